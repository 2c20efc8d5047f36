/**
 * The Razorpay API client's configuration from the environment, validated at start. The key
 * secret is never echoed in an error.
 */
import { z } from 'zod';
import { resolveSecretFiles } from '../../contracts/index.ts';

export interface RazorpayApiConfig {
  keyId: string;
  keySecret: string;
  /** https://api.razorpay.com in production; the fake's URL in tests and the sandbox. */
  baseUrl: string;
  timeoutMs: number;
  maxAttempts: number;
}

const Env = z.object({
  RAZORPAY_KEY_ID: z
    .string()
    .regex(/^rzp_(test|live)_[A-Za-z0-9]+$/, 'must look like rzp_test_… or rzp_live_…'),
  RAZORPAY_KEY_SECRET: z.string().min(8, 'must be set (at least 8 characters)'),
  RAZORPAY_API_URL: z.url().default('https://api.razorpay.com'),
  RAZORPAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  RAZORPAY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
});

export class RazorpayConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RazorpayConfigError';
  }
}

export function loadRazorpayApiConfig(env: NodeJS.ProcessEnv): RazorpayApiConfig {
  const resolved = resolveSecretFiles(env, ['RAZORPAY_KEY_SECRET']);
  const r = Env.safeParse(resolved.env);
  if (!r.success || resolved.problems.length > 0) {
    // Issue messages name the variable; zod does not put the received value in them.
    const lines = [
      ...resolved.problems,
      ...(r.success ? [] : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)),
    ];
    throw new RazorpayConfigError(`invalid Razorpay configuration:\n${lines.join('\n')}`);
  }
  return {
    keyId: r.data.RAZORPAY_KEY_ID,
    keySecret: r.data.RAZORPAY_KEY_SECRET,
    baseUrl: r.data.RAZORPAY_API_URL,
    timeoutMs: r.data.RAZORPAY_TIMEOUT_MS,
    maxAttempts: r.data.RAZORPAY_MAX_ATTEMPTS,
  };
}
