// Empty stand-in for Node built-ins (fs, path, url, events, …) that bundled code reaches only
// outside browsers. xmlbuilder2 (pulled in by vtk.js's XML reader) subclasses
// events.EventEmitter when it loads, so that one name must exist.
export class EventEmitter {}
export default { EventEmitter };
