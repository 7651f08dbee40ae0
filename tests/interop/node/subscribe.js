'use strict';
// Subscribe an app with node-queue-bus:
//   node subscribe.js APP PRIORITY JOB MATCHER_JSON
// A matcher value {"regexp": "^user_", "flags": "i"} becomes a JS RegExp (node-queue-bus
// stores it as Ruby's Regexp#to_s); any other value is passed as it is.
// Prints {"queue": "<app>_<priority>"}, the queue node-queue-bus says to work.
const NodeQueueBus = require('node-queue-bus');
const { cli, fail } = require('./connection');

const { positionals, connection } = cli({});
const [app, priority, job, matcherJson] = positionals;
const matcher = {};
for (const [key, value] of Object.entries(JSON.parse(matcherJson))) {
  const isRegexp = value !== null && typeof value === 'object' && typeof value.regexp === 'string';
  matcher[key] = isRegexp ? new RegExp(value.regexp, value.flags || '') : value;
}

const bus = new NodeQueueBus.bus({ connection });
bus.on('error', fail);
bus.connect((error) => {
  if (error) fail(error);
  bus.subscribe(app, priority, job, matcher, (err, queue) => {
    if (err) fail(err);
    console.log(JSON.stringify({ queue }));
    bus.end(() => process.exit(0));
  });
});
