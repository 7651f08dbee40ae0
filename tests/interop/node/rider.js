'use strict';
// Run a node-queue-bus rider (a node-resque worker) until SIGTERM:
//   node rider.js [--queues a,b] [--drive] [--jobs jobA,jobB] [--record KEY] [--poll-ms 100]
// --drive also works bus_incoming (node-queue-bus's driver). Each job named in --jobs
// records what it ran by RPUSHing {"job", "queue", "attributes"} as JSON to the Redis list
// KEY (a plain key, outside the namespace), then succeeds. Prints "ready" once working.
const NodeQueueBus = require('node-queue-bus');
const { cli, fail } = require('./connection');

const { values, connection } = cli({
  queues: { type: 'string', default: '' },
  drive: { type: 'boolean', default: false },
  jobs: { type: 'string', default: '' },
  record: { type: 'string', default: 'interop:node:ridden' },
  'poll-ms': { type: 'string', default: '100' },
});

const jobs = {};
for (const name of values.jobs.split(',').filter(Boolean)) {
  jobs[name] = {
    perform(attributes, callback) {
      const entry = JSON.stringify({ job: name, queue: this.queue, attributes });
      this.connection.redis.rpush(values.record, entry, (error) => callback(error));
    },
  };
}

const rider = new NodeQueueBus.rider(
  {
    connection,
    queues: values.queues.split(',').filter(Boolean),
    toDrive: values.drive,
    timeout: Number(values['poll-ms']),
  },
  jobs,
);
rider.on('error', (queue, job, error) => console.error('error', queue, error || job));
rider.on('failure', (queue, job, error) => console.error('failure', queue, JSON.stringify(job), String(error)));

const stop = () => rider.end(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

rider.connect(() => {
  rider.start();
  console.log('ready');
});
