// Imported first by the entry point: stdout carries only protocol frames, so anything a library
// prints with console.log/info/debug goes to stderr, which the extension shows in its log.
const toStderr = (...args: unknown[]) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
