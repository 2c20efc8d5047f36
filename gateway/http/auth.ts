/**
 * Constant-time checks of webhook secrets and signatures. Nothing here logs or returns a
 * secret; callers log only that a check failed.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { agentToken } from '../../contracts/index.ts';

/**
 * Compares two strings in time independent of where they differ and of their lengths: both
 * are hashed to 32 bytes first, so timingSafeEqual always sees equal-length buffers.
 */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** Razorpay's webhook signature: HMAC-SHA256 of the raw body with the webhook secret, hex. */
export function razorpaySignature(rawBody: Buffer, secret: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

export function verifyRazorpaySignature(
  rawBody: Buffer,
  signature: string | undefined,
  secret: string,
): boolean {
  if (signature === undefined || signature.length === 0) return false;
  return safeEqual(signature.toLowerCase(), razorpaySignature(rawBody, secret));
}

/** A single header value; a repeated header is treated as absent (it is never legitimate). */
export function headerValue(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Per-VM agent tokens are derived from one master secret (contracts' `agentToken`: HMAC of
 * the VM name); the session side issues one to a VM at create time, the gateway recomputes
 * it, nothing is stored.
 */
export type AgentVerifier = (vmName: string, token: string) => boolean | Promise<boolean>;

export function agentTokenVerifier(masterSecret: string): AgentVerifier {
  return (vmName, token) => safeEqual(token, agentToken(masterSecret, vmName));
}

/** Used when no agent secret is configured: every agent report is refused. */
export const refuseAllAgents: AgentVerifier = () => false;
