/** The public face of the gateway's Razorpay side: the SDK port and the effects runner. */
export {
  RazorpayApiError,
  createRazorpayClient,
  normalizeRazorpayError,
  type CreateLinkInput,
  type LinkPayment,
  type PaymentLink,
  type Payments,
  type RazorpayClientOptions,
} from './client.ts';
export {
  createRazorpayEffects,
  ensureRazorpayEffectsConsumer,
  type RazorpayEffects,
  type RazorpayEffectsOptions,
} from './effects.ts';
export { RazorpayConfigError, loadRazorpayApiConfig, type RazorpayApiConfig } from './config.ts';
