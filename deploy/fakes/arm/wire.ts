/** Small helpers shared by the fake's handlers. */
import type { z } from 'zod';
import { ArmError } from './errors.ts';

/** Parses a request body with its schema; ARM answers 400 InvalidRequestContent otherwise. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? '' : ` at '${issue.path.join('.')}': ${issue.message}`;
    throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid${where}.`);
  }
  return parsed.data;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9_]$|^[A-Za-z0-9]$/;

export function validName(name: string, max: number): void {
  if (name.length > max || !NAME.test(name)) {
    throw new ArmError(400, 'InvalidResourceName', `Resource name '${name}' is invalid.`);
  }
}

export function lastSegment(id: string): string {
  const parts = id.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '';
}
