'use strict';
// Shared by the interop scripts: argv parsing and node-queue-bus connection details.
//
// Every script takes --redis URL (default $NQB_REDIS_URL) and --namespace NS (default
// $NQB_NAMESPACE, else "resque"). node-resque joins its namespace and a key's parts with
// ':' (node-resque/lib/connection.js key()) and node-queue-bus appends ':bus_app:' /
// ':bus_apps' to it (node-queue-bus/lib/sections/subscriptions.js fullAppPrefix), so the
// namespace is "resque", never "resque:".
const { parseArgs } = require('node:util');

const COMMON = {
  redis: { type: 'string', default: process.env.NQB_REDIS_URL || 'redis://127.0.0.1:6379/0' },
  namespace: { type: 'string', default: process.env.NQB_NAMESPACE || 'resque' },
  'max-seconds': { type: 'string', default: '60' },
};

function connectionDetails(url, namespace) {
  if (namespace.endsWith(':')) {
    throw new Error(`namespace ${JSON.stringify(namespace)}: give it without the trailing ':' (node-resque adds it)`);
  }
  const parsed = new URL(url);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 6379),
    database: Number(parsed.pathname.slice(1) || 0),
    namespace,
  };
}

// Parse argv; exit with status 124 if the script outlives --max-seconds (a stuck
// connection must never hang a test run).
function cli(options) {
  const { values, positionals } = parseArgs({ options: { ...COMMON, ...options }, allowPositionals: true });
  const limit = Number(values['max-seconds']);
  setTimeout(() => {
    console.error(`gave up after ${limit}s`);
    process.exit(124);
  }, limit * 1000).unref();
  return { values, positionals, connection: connectionDetails(values.redis, values.namespace) };
}

function fail(error) {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
}

module.exports = { cli, connectionDetails, fail };
