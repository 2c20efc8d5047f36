/** The ingress routers: what the worker process starts to turn raw ingress into commands. */
export {
  createIngressRouter,
  ensureIngressConsumer,
  type IngressRoute,
  type IngressRouter,
  type IngressRouterOptions,
  type RouteContext,
  type RoutedCommand,
  type RoutedSource,
} from './router.ts';
export { createAgentIngress, type AgentIngressOptions } from './agent.ts';
export { createTelegramIngress, type TelegramIngressOptions } from './telegram.ts';
export {
  DEFAULT_TOPUP_PRESETS_PAISE,
  createTelegramRoute,
  routeTelegramUpdate,
  type TelegramRouteOptions,
} from './telegram-route.ts';
export { createRazorpayIngress, type RazorpayIngress } from './razorpay.ts';
