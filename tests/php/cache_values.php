<?php
// Laravel's own cache store (the harness app under fixtures/laravel: Debian's Laravel 8.83, with the
// store CACHE_DRIVER names: redis, file, or database, which is added here as tests/php/cache_artisan.php does) for tests/actions_cache.rs: PHP reads what defer-worker wrote and
// writes what defer-worker must read. Values cross the process boundary in PHP's serialize() format, so
// their PHP types are kept exactly.
//
// Usage: php cache_values.php get KEY              prints serialize(Cache::get(KEY)) (N; when absent)
//        php cache_values.php put KEY TTL SER      Cache::put(KEY, unserialize(SER), TTL)
//        php cache_values.php has KEY [KEY...]     one line per key: 1 when Cache::has(KEY), else 0

$app = require __DIR__.'/../../fixtures/laravel/bootstrap.php';

$app['config']->set('cache.stores.database', [
    'driver' => 'database',
    'table' => getenv('DB_CACHE_TABLE') ?: 'cache',
    'connection' => null,
]);
if ($app['config']->get('cache.default') === 'database') {
    $schema = $app['db']->connection()->getSchemaBuilder();
    if (! $schema->hasTable('cache')) {
        $schema->create('cache', function ($t) {
            $t->string('key')->primary();
            $t->mediumText('value');
            $t->integer('expiration');
        });
    }
}
$cache = $app['cache'];

$args = array_slice($argv, 1);
switch ($args[0] ?? '') {
    case 'get':
        echo serialize($cache->get($args[1])), "\n";
        break;
    case 'put':
        $cache->put($args[1], unserialize($args[3]), (int) $args[2]);
        break;
    case 'has':
        foreach (array_slice($args, 1) as $key) {
            echo $cache->has($key) ? '1' : '0', "\n";
        }
        break;
    default:
        fwrite(STDERR, "usage: cache_values.php get|put|has ...\n");
        exit(2);
}
