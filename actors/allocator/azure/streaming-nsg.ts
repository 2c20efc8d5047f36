/**
 * The network security group that lets players' Moonlight reach Sunshine on session VMs. A
 * Standard public IP is closed to inbound traffic until an NSG allows it, so every session
 * VM's NIC with a public IP carries this group: one per region (shared by all its VMs, so
 * never deleted), converged by an idempotent PUT when the effects runner starts and, if that
 * has not happened yet (or did not work), before the next NIC that needs it.
 */
import type { Logger } from 'pino';
import type { InboundRule, VmProvider } from './port.ts';

/** The tag `purpose` of the group. */
export const STREAMING_NSG_PURPOSE = 'respawn-streaming';

/**
 * The region is in the name: an NSG serves NICs of its own region only, and a resource group
 * may hold more than one region's VMs.
 */
export const streamingNsgNameOf = (region: string): string => `respawn-streaming-nsg-${region}`;

/**
 * Sunshine's default ports (base port 47989) that Moonlight connects to: TCP 47984 (HTTPS),
 * 47989 (HTTP), 48010 (RTSP); UDP 47998 (video), 47999 (control), 48000 (audio). Source: the
 * port table of the `port` setting in LizardByte/Sunshine docs/source/about/advanced_usage.rst,
 * matching the offsets in its src/nvhttp.h (PORT_HTTPS -5, PORT_HTTP 0), src/rtsp.h
 * (RTSP_SETUP_PORT 21) and src/stream.h (VIDEO_STREAM_PORT 9, CONTROL_PORT 10,
 * AUDIO_STREAM_PORT 11). Left out on purpose: the web UI (TCP 47990, an admin console) and the
 * unused microphone port (UDP 48002).
 */
export const STREAMING_RULES: readonly InboundRule[] = [
  {
    name: 'moonlight-tcp',
    protocol: 'Tcp',
    ports: ['47984', '47989', '48010'],
    priority: 1000,
    description: 'Moonlight to Sunshine: HTTPS, HTTP (pairing, app list), RTSP',
  },
  {
    name: 'moonlight-udp',
    protocol: 'Udp',
    ports: ['47998-48000'],
    priority: 1010,
    description: 'Moonlight to Sunshine: video, control, audio',
  },
];

export interface StreamingSecurityGroup {
  readonly name: string;
  /**
   * PUTs the group unless it already converged since start (concurrent callers share one PUT);
   * resolves to its name. A failure is thrown and leaves it to the next call.
   */
  ensure(): Promise<string>;
  /** The next ensure() PUTs again: a NIC found the group missing (someone removed it). */
  forget(): void;
  /** Settles once no PUT is in flight (for a runner's stop). */
  idle(): Promise<void>;
}

export function createStreamingSecurityGroup(deps: {
  provider: VmProvider;
  region: string;
  log: Logger;
}): StreamingSecurityGroup {
  const { provider, region } = deps;
  const name = streamingNsgNameOf(region);
  let converged: Promise<string> | undefined;
  let latest: Promise<unknown> = Promise.resolve();

  return {
    name,
    ensure() {
      if (converged !== undefined) return converged;
      const attempt = provider
        .ensureSecurityGroup({
          name,
          rules: STREAMING_RULES,
          tags: { purpose: STREAMING_NSG_PURPOSE, region },
        })
        .then(() => {
          deps.log.info({ nsg: name }, 'streaming network security group converged');
          return name;
        });
      converged = attempt;
      latest = attempt.catch(() => {
        if (converged === attempt) converged = undefined;
      });
      return attempt;
    },
    forget() {
      converged = undefined;
    },
    async idle() {
      await latest;
    },
  };
}
