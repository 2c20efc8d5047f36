/** The cloud layer's public face: the VmProvider port, its Azure implementation, credentials. */
export {
  PowerStates,
  ProviderError,
  ProviderErrorKinds,
  type AdminCredentials,
  type DiskFromSnapshotSpec,
  type DiskInfo,
  type DiskSource,
  type DiskSpec,
  type InboundRule,
  type NicInfo,
  type NicSpec,
  type PowerState,
  type ProviderErrorData,
  type ProviderErrorKind,
  type ResourceTags,
  type SecurityGroupInfo,
  type SecurityGroupSpec,
  type SharedResourceTags,
  type SnapshotInfo,
  type SnapshotSpec,
  type TagFilter,
  type UsageFigure,
  type VmInfo,
  type VmProvider,
  type VmSpec,
} from './port.ts';
export { classifyProviderError, parseRetryAfter } from './classify.ts';
export {
  STREAMING_NSG_PURPOSE,
  STREAMING_RULES,
  createStreamingSecurityGroup,
  streamingNsgNameOf,
  type StreamingSecurityGroup,
} from './streaming-nsg.ts';
export { createAzureVmProvider, type AzureVmProviderOptions } from './provider.ts';
export {
  createAzureCredential,
  staticTokenCredential,
  type AzureCredentialConfig,
} from './credential.ts';
