<?php
// The harness app (fixtures/laravel, real Laravel 8.83) with one more cache store, `database`
// (Illuminate\Cache\DatabaseStore on the default DB connection, table DB_CACHE_TABLE or `cache`, created
// like Laravel's cache migration when missing), for tests/ops_restart.rs. The harness itself offers only
// array, file and redis. Everything else (CACHE_DRIVER, CACHE_PREFIX, DB_*, REDIS_*) is the harness's.
//
// Usage: php cache_artisan.php get <key>       prints json_encode(Cache::get(key))
//        php cache_artisan.php forever <key> <json>  Cache::forever(key, json_decode(json)), as
//                                              Laravel 12's QueueManager::pause writes its flag
//        php cache_artisan.php <artisan args>  runs an artisan command (queue:work, queue:restart, ...)

$app = require __DIR__.'/../../fixtures/laravel/bootstrap.php';

$app['config']->set('cache.stores.database', [
    'driver' => 'database',
    'table' => getenv('DB_CACHE_TABLE') ?: 'cache',
    'connection' => null,
]);

if ($app['config']->get('cache.default') === 'database') {
    $schema = $app['db']->connection()->getSchemaBuilder();
    $table = $app['config']->get('cache.stores.database.table');
    if (! $schema->hasTable($table)) {
        $schema->create($table, function ($t) {
            $t->string('key')->primary();
            $t->mediumText('value');
            $t->integer('expiration');
        });
    }
}

$args = array_slice($argv, 1);
if (($args[0] ?? null) === 'get') {
    echo json_encode($app['cache']->get($args[1] ?? '')), "\n";
    exit(0);
}

if (($args[0] ?? null) === 'forever') {
    $app['cache']->forever($args[1] ?? '', json_decode($args[2] ?? 'null', true));
    exit(0);
}

$kernel = $app->make(Illuminate\Contracts\Console\Kernel::class);
$input = new Symfony\Component\Console\Input\ArgvInput(array_merge(['artisan'], $args));
$status = $kernel->handle($input, new Symfony\Component\Console\Output\ConsoleOutput);
$kernel->terminate($input, $status);
exit($status);
