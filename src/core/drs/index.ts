export * from './demand.ts';
export * from './options.ts';
export * from './planner.ts';
export * from './simulate.ts';
