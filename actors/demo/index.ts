export { demoActor, DemoState } from './actor.ts';
