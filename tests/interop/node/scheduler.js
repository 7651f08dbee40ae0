'use strict';
// Run node-resque's scheduler (what node-queue-bus's README runs for publishAt/publishIn)
// until SIGTERM: node scheduler.js [--poll-ms 200]
// node-resque is resolved through node-queue-bus, so this is the version it pins.
const path = require('node:path');
const { cli, fail } = require('./connection');

const busDir = path.dirname(require.resolve('node-queue-bus'));
const resque = require(require.resolve('node-resque', { paths: [busDir] }));

const { values, connection } = cli({ 'poll-ms': { type: 'string', default: '200' } });

const scheduler = new resque.scheduler({ connection, timeout: Number(values['poll-ms']) });
scheduler.on('error', fail);

const stop = () => scheduler.end(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

scheduler.connect(() => {
  scheduler.start();
  console.log('ready');
});
