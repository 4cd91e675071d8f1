//! Decode benchmarks on real-Laravel fixtures: a typical ~1 KB DeferredJob payload and the ~100 KB one.
//! Measures the worker's per-job decode work: envelope JSON, PHP unserialize, DeferredJob extraction.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use defer_worker::deferred::{DeferredJob, DEFAULT_CLASS};
use defer_worker::laravel::encrypter::Encrypter;
use defer_worker::laravel::payload::Payload;
use defer_worker::php;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/payloads");
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures/payloads")
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(_, b)| {
            Payload::parse(b).ok().is_some_and(|p| {
                p.command_name() == Some(DEFAULT_CLASS)
                    && p.envelope()
                        .data
                        .as_ref()
                        .and_then(|d| d.command.as_deref())
                        .is_some_and(|c| c.starts_with("O:"))
            })
        })
        .collect();
    all.sort_by_key(|(_, b)| b.len());
    // The app's typical job: deferWhatsApp(['order_id' => 42]) as Laravel 8 writes it (~1 KB).
    let small = all
        .iter()
        .find(|(n, _)| n == "whatsapp.json")
        .cloned()
        .expect("fixtures/payloads/whatsapp.json");
    let large = all.last().cloned().expect("a large fixture");
    vec![small, large]
}

fn decode_job(raw: &[u8]) -> DeferredJob {
    let p = Payload::parse(raw).unwrap();
    let c = p
        .command(&Encrypter::none(), &php::Limits::default())
        .unwrap();
    DeferredJob::from_command(&c.value, DEFAULT_CLASS).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, raw) in fixtures() {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        let label = format!("{name} ({} B)", raw.len());
        g.bench_with_input(
            BenchmarkId::new("payload+command+deferred", &label),
            &raw,
            |b, raw| b.iter(|| decode_job(raw)),
        );
        let cmd = Payload::parse(&raw)
            .unwrap()
            .envelope()
            .data
            .clone()
            .unwrap()
            .command
            .unwrap();
        g.bench_with_input(BenchmarkId::new("unserialize", &label), &cmd, |b, cmd| {
            b.iter(|| php::unserialize(cmd.as_bytes()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
