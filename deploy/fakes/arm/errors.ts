/**
 * ARM's error shapes: `{ "error": { "code", "message" } }` with the HTTP status ARM uses for
 * it. Codes are the real ones, so the SDK and Respawn's classifier see what Azure would send.
 */

export interface ArmErrorBody {
  code: string;
  message: string;
}

/** Thrown inside the fake's handlers; the router turns it into the HTTP answer. */
export class ArmError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ArmError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  body(): { error: ArmErrorBody } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Capacity failures Azure reports for a VM create. */
export const CapacityCodes = {
  skuNotAvailable: 'SkuNotAvailable',
  allocationFailed: 'AllocationFailed',
  zonalAllocationFailed: 'ZonalAllocationFailed',
  overconstrained: 'OverconstrainedAllocationRequest',
  overconstrainedZonal: 'OverconstrainedZonalAllocationRequest',
} as const;
export type CapacityCode = (typeof CapacityCodes)[keyof typeof CapacityCodes];

export function capacityMessage(
  code: CapacityCode,
  size: string,
  location: string,
  zone: string | null,
): string {
  const where = zone === null ? `location '${location}'` : `location '${location}' zone '${zone}'`;
  switch (code) {
    case CapacityCodes.skuNotAvailable:
      return `The requested VM size '${size}' is currently not available in ${where}. Try another size, zone or location.`;
    case CapacityCodes.allocationFailed:
      return `Allocation failed. There is not enough capacity for the requested VM size '${size}' in ${where}.`;
    case CapacityCodes.zonalAllocationFailed:
      return `Allocation failed. There is not enough capacity for the requested VM size '${size}' in ${where}.`;
    default:
      return `Allocation failed. The VM size '${size}' cannot be placed with the requested constraints in ${where}.`;
  }
}

/** The shape of Azure's quota refusal (409 OperationNotAllowed), which names the usage. */
export function quotaExceeded(args: {
  quotaLabel: string;
  location: string;
  limit: number;
  current: number;
  required: number;
}): ArmError {
  const { quotaLabel, location, limit, current, required } = args;
  return new ArmError(
    409,
    'OperationNotAllowed',
    `Operation could not be completed as it results in exceeding approved ${quotaLabel} quota. ` +
      `Additional details - Deployment Model: Resource Manager, Location: ${location}, ` +
      `Current Limit: ${limit}, Current Usage: ${current}, Additional Required: ${required}, ` +
      `(Minimum) New Limit Required: ${current + required}.`,
  );
}

export function resourceNotFound(type: string, name: string, resourceGroup: string): ArmError {
  return new ArmError(
    404,
    'ResourceNotFound',
    `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found.`,
  );
}

export function referenceNotFound(id: string, by: string): ArmError {
  return new ArmError(404, 'NotFound', `Resource ${id} referenced by ${by} was not found.`);
}

/** A NIC naming a public IP, subnet or NSG that is not there (Azure answers 400). */
export function invalidReference(ref: string, by: string): ArmError {
  return new ArmError(
    400,
    'InvalidResourceReference',
    `Resource ${ref} referenced by resource ${by} was not found. Please make sure that the ` +
      'referenced resource exists, and that both resources are in the same region.',
  );
}
