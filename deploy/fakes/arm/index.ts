/** The ARM-compatible fake: what tests, the local sandbox and the VM-agent simulator use. */
export {
  startArmFake,
  type ArmFake,
  type ArmFakeState,
  type FakeDiskView,
  type FakeNicView,
  type FakeNsgView,
  type FakePublicIpView,
  type FakeSnapshotView,
  type FakeVmView,
} from './server.ts';
export {
  DEFAULT_QUOTAS,
  DEFAULT_SIZES,
  REGIONAL_CORES,
  SPOT_CORES,
  type ArmFakeOptions,
  type CapacityRule,
  type Fault,
  type FakeVmEvent,
  type RequestRecord,
  type ScheduledEventsDocument,
  type UsageFigure,
  type VmSizeInfo,
} from './model.ts';
export { CapacityCodes, type CapacityCode } from './errors.ts';
export { FAKE_VM_HEADER } from './imds.ts';
