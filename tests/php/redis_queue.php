<?php
// Drives Laravel's own Illuminate\Queue\RedisQueue (Debian's php-laravel-framework, phpredis client)
// for tests/redis_queue.rs, so the Rust side is checked against the real PHP implementation.
//
// Usage: php redis_queue.php <prefix> <action> <queue>
//   push  : dispatch an App\Jobs\DeferredJob with RedisQueue::push, print the raw ready list (JSON array)
//   pop   : RedisQueue::pop (migrates first, like a worker), print {raw, reserved, attempts, id}
//           or null, then delete the job so its reservation is removed the way PHP does it.
//   reserve: the same pop, leaving the job reserved (a PHP worker still running it).
// Output: one JSON document on stdout.

namespace App\Jobs {
    // Same shape as RestroSaaS's job: two protected properties, Queueable-style public fields.
    class DeferredJob
    {
        public $connection;
        public $queue;
        public $delay;
        protected $action;
        protected $data;

        public function __construct($action, array $data)
        {
            $this->action = $action;
            $this->data = $data;
        }
    }
}

namespace {
    require '/usr/share/php/Illuminate/autoload.php';

    use Illuminate\Container\Container;
    use Illuminate\Queue\RedisQueue;
    use Illuminate\Redis\RedisManager;

    [$script, $prefix, $action, $queueName] = $argv + [null, null, null, null];
    if ($queueName === null) {
        fwrite(STDERR, "usage: php redis_queue.php <prefix> <push|pop|reserve> <queue>\n");
        exit(2);
    }

    $app = new Container();
    Container::setInstance($app);
    $redis = new RedisManager($app, 'phpredis', [
        'options' => ['prefix' => $prefix],
        'default' => ['host' => '127.0.0.1', 'port' => 6379, 'database' => 0],
    ]);
    $queue = new RedisQueue($redis, 'default', 'default', 90, null);
    $queue->setContainer($app);
    $queue->setConnectionName('redis');

    switch ($action) {
        case 'push':
            $queue->push(new App\Jobs\DeferredJob('whatsapp_notification', ['order_id' => 42, 'note' => "caf\u{e9} / ok"]), '', $queueName);
            echo json_encode($redis->connection()->lrange('queues:' . $queueName, 0, -1));
            break;
        case 'pop':
        case 'reserve':
            $job = $queue->pop($queueName);
            if ($job === null) {
                echo 'null';
                break;
            }
            echo json_encode([
                'raw' => $job->getRawBody(),
                'reserved' => $job->getReservedJob(),
                'attempts' => $job->attempts(),
                'id' => $job->getJobId(),
            ]);
            if ($action === 'pop') {
                $job->delete();
            }
            break;
        default:
            fwrite(STDERR, "unknown action $action\n");
            exit(2);
    }
}
