'use strict';
// Publish one event with node-queue-bus:
//   node publish.js EVENT_TYPE [ATTRIBUTES_JSON] [--in MS] [--heartbeat]
// --in uses bus.publishIn (resque-scheduler's delayed layout); --heartbeat uses
// bus.publishHeartbeat (a QueueBus::Heartbeat job on bus_incoming) and ignores EVENT_TYPE.
const NodeQueueBus = require('node-queue-bus');
const { cli, fail } = require('./connection');

const { values, positionals, connection } = cli({
  in: { type: 'string' },
  heartbeat: { type: 'boolean', default: false },
});
const [eventType, attributesJson] = positionals;
const attributes = attributesJson ? JSON.parse(attributesJson) : {};

const bus = new NodeQueueBus.bus({ connection });
bus.on('error', fail);
bus.connect((error) => {
  if (error) fail(error);
  const done = (err) => {
    if (err) fail(err);
    console.log(JSON.stringify({ published: values.heartbeat ? 'QueueBus::Heartbeat' : eventType }));
    bus.end(() => process.exit(0));
  };
  if (values.heartbeat) {
    bus.publishHeartbeat(done);
  } else if (values.in !== undefined) {
    bus.publishIn(Number(values.in), eventType, attributes, done);
  } else {
    bus.publish(eventType, attributes, done);
  }
});
