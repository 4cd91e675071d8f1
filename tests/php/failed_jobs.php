<?php
// Drives Laravel 8.83's own Illuminate\Queue\Failed\DatabaseUuidFailedJobProvider (Debian's
// php-laravel-framework) for tests/failed_jobs.rs, so rows written by defer-worker are read by PHP
// and rows written by PHP are read by defer-worker, on the same table.
//
// Usage: php failed_jobs.php <driver> <database> <table> <action> [args...]
//   driver    sqlite | mysql | pgsql (mysql: 127.0.0.1:3306 root, pgsql: 127.0.0.1:5432 postgres)
//   database  the SQLite file path, or the database name
//   actions:
//     migrate                      create the table with the schema of Laravel's failed_jobs.stub
//     find <uuid>                  provider->find(uuid)           → JSON object or null
//     all                          provider->all()                → JSON array
//     log <tz> <connection> <queue> <payload-file> <message>
//                                  provider->log(...) with new RuntimeException(message), Date::now()
//                                  in timezone <tz>              → JSON {"uuid": ...}
// Output: one JSON document on stdout.

require '/usr/share/php/Illuminate/autoload.php';

use Illuminate\Database\Capsule\Manager as Capsule;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Queue\Failed\DatabaseUuidFailedJobProvider;

[$script, $driver, $database, $table, $action] = array_slice($argv, 0, 5);
$args = array_slice($argv, 5);

// The connection settings of the Laravel 8/10 skeleton's config/database.php.
$configs = [
    'sqlite' => ['driver' => 'sqlite', 'database' => $database, 'prefix' => ''],
    'mysql' => [
        'driver' => 'mysql', 'host' => '127.0.0.1', 'port' => 3306, 'database' => $database,
        'username' => 'root', 'password' => '', 'charset' => 'utf8mb4',
        'collation' => 'utf8mb4_unicode_ci', 'prefix' => '', 'strict' => false,
    ],
    'pgsql' => [
        'driver' => 'pgsql', 'host' => '127.0.0.1', 'port' => 5432, 'database' => $database,
        'username' => 'postgres', 'password' => '', 'charset' => 'utf8', 'prefix' => '',
        'schema' => 'public', 'sslmode' => 'prefer',
    ],
];
$capsule = new Capsule;
$capsule->addConnection($configs[$driver], 'default');
$provider = new DatabaseUuidFailedJobProvider($capsule->getDatabaseManager(), 'default', $table);

switch ($action) {
    case 'migrate':
        // The body of Illuminate/Queue/Console/stubs/failed_jobs.stub.
        $capsule->getConnection('default')->getSchemaBuilder()->create($table, function (Blueprint $t) {
            $t->id();
            $t->string('uuid')->unique();
            $t->text('connection');
            $t->text('queue');
            $t->longText('payload');
            $t->longText('exception');
            $t->timestamp('failed_at')->useCurrent();
        });
        $out = ['ok' => true];
        break;
    case 'find':
        $out = $provider->find($args[0]);
        break;
    case 'all':
        $out = $provider->all();
        break;
    case 'log':
        [$tz, $connection, $queue, $payloadFile, $message] = $args;
        date_default_timezone_set($tz);
        $uuid = $provider->log($connection, $queue, file_get_contents($payloadFile), new RuntimeException($message));
        $out = ['uuid' => $uuid];
        break;
    default:
        fwrite(STDERR, "unknown action $action\n");
        exit(2);
}
echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
