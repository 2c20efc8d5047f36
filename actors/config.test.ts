import { describe, expect, it } from 'vitest';
import { ConfigError, allocatorConfigFrom, loadWorkerConfig, sessionConfigFrom } from './config.ts';
import { defaultAllocatorConfig } from './allocator/index.ts';
import { defaultSessionConfig } from './session/state.ts';

function configErrorFrom(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadWorkerConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, the configuration loaded');
}

describe('loadWorkerConfig', () => {
  it('gives the defaults for an empty environment', () => {
    expect(loadWorkerConfig({})).toStrictEqual({
      NATS_URL: 'nats://127.0.0.1:4222',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/respawn',
      LOG_LEVEL: 'info',
      RESPAWN_ACTORS: ['demo'],
      RESPAWN_MAX_BATCH: 256,
      RESPAWN_CONCURRENCY: 2,
      RESPAWN_MAX_ATTEMPTS: 10,
      RESPAWN_DB_POOL: 10,
      RESPAWN_HTTP_PORT: 9464,
      RESPAWN_MIGRATE_ONLY: false,
      RESPAWN_INGRESS: [],
      RESPAWN_AZURE_EFFECTS: false,
      RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS: 20,
      RESPAWN_REGIONS: [],
      RESPAWN_DISK_RECONCILE_SECONDS: 3600,
      RESPAWN_DISK_RECONCILE_GRACE_SECONDS: 1800,
      AZURE_VM_IMAGE: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      AZURE_DISK_SIZE_GB: 256,
      AZURE_VM_PUBLIC_IP: true,
      AZURE_POLL_INTERVAL_MS: 2000,
      RESPAWN_CLOCK_OFFSET_MS: 0,
      RESPAWN_MIGRATE: true,
      RESPAWN_REGION: 'centralindia',
      RESPAWN_SESSION_ADMISSION: true,
      RESPAWN_STREAM_REPLICAS: 1,
      RESPAWN_PARTITION_WINDOWS: {},
      RESPAWN_CLOCK: 'system',
    });
  });

  it('reads and coerces given values, ignoring unrelated variables', () => {
    const cfg = loadWorkerConfig({
      NATS_URL: 'nats://nats:4222',
      DATABASE_URL: 'postgresql://u@db/x',
      LOG_LEVEL: 'debug',
      RESPAWN_ACTORS: ' demo , session,,',
      RESPAWN_MAX_BATCH: '32',
      RESPAWN_CONCURRENCY: '8',
      RESPAWN_MAX_ATTEMPTS: '3',
      RESPAWN_DB_POOL: '4',
      RESPAWN_HTTP_PORT: '0',
      RESPAWN_CLOCK_OFFSET_MS: '-1500',
      RESPAWN_MIGRATE: 'false',
      RESPAWN_REGION: 'westeurope',
      RESPAWN_SESSION_ADMISSION: 'false',
      RESPAWN_PARTITION_WINDOWS: 'alloc=512, demo=64',
      HOME: '/root',
    });
    expect(cfg).toStrictEqual({
      NATS_URL: 'nats://nats:4222',
      DATABASE_URL: 'postgresql://u@db/x',
      LOG_LEVEL: 'debug',
      RESPAWN_ACTORS: ['demo', 'session'],
      RESPAWN_MAX_BATCH: 32,
      RESPAWN_CONCURRENCY: 8,
      RESPAWN_MAX_ATTEMPTS: 3,
      RESPAWN_DB_POOL: 4,
      RESPAWN_HTTP_PORT: 0,
      RESPAWN_MIGRATE_ONLY: false,
      RESPAWN_INGRESS: [],
      RESPAWN_AZURE_EFFECTS: false,
      RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS: 20,
      RESPAWN_REGIONS: [],
      RESPAWN_DISK_RECONCILE_SECONDS: 3600,
      RESPAWN_DISK_RECONCILE_GRACE_SECONDS: 1800,
      AZURE_VM_IMAGE: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      AZURE_DISK_SIZE_GB: 256,
      AZURE_VM_PUBLIC_IP: true,
      AZURE_POLL_INTERVAL_MS: 2000,
      RESPAWN_CLOCK_OFFSET_MS: -1500,
      RESPAWN_MIGRATE: false,
      RESPAWN_REGION: 'westeurope',
      RESPAWN_SESSION_ADMISSION: false,
      RESPAWN_STREAM_REPLICAS: 1,
      RESPAWN_PARTITION_WINDOWS: { alloc: 512, demo: 64 },
      RESPAWN_CLOCK: 'system',
    });
  });

  it.each([
    ['RESPAWN_ACTORS', 'nope'],
    ['RESPAWN_ACTORS', 'demo,nope'],
    ['RESPAWN_ACTORS', ' , '],
    ['RESPAWN_MAX_BATCH', '0'],
    ['RESPAWN_MAX_BATCH', '4097'],
    ['RESPAWN_MAX_BATCH', '1.5'],
    ['RESPAWN_MAX_BATCH', 'lots'],
    ['RESPAWN_CONCURRENCY', '65'],
    ['RESPAWN_MAX_ATTEMPTS', '0'],
    ['RESPAWN_DB_POOL', '-1'],
    ['RESPAWN_HTTP_PORT', '65536'],
    ['RESPAWN_HTTP_PORT', 'metrics'],
    ['RESPAWN_INGRESS', 'telegram,smtp'],
    ['RESPAWN_AZURE_EFFECTS', 'yes'],
    ['RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS', '1'],
    ['AZURE_VM_PUBLIC_IP', 'no'],
    ['RESPAWN_REGIONS', 'southindia,South India'],
    ['TELEGRAM_BOT_USERNAME', 'respawn bot'],
    ['RESPAWN_DISK_RECONCILE_SECONDS', '-1'],
    ['RESPAWN_DISK_RECONCILE_GRACE_SECONDS', 'an hour'],
    ['RESPAWN_CLOCK_OFFSET_MS', 'soon'],
    ['RESPAWN_PARTITION_WINDOWS', 'alloc=0'],
    ['RESPAWN_PARTITION_WINDOWS', 'nope=4'],
    ['RESPAWN_PARTITION_WINDOWS', 'alloc'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'x postgres://y'],
    ['LOG_LEVEL', 'verbose'],
    ['RESPAWN_MIGRATE', 'yes'],
    ['RESPAWN_REGION', 'West Europe'],
    ['NATS_URL', ''],
  ])('rejects %s=%j with a ConfigError naming the variable', (name, value) => {
    const err = configErrorFrom({ [name]: value });
    expect(err.name).toBe('ConfigError');
    expect(err.message).toContain(name);
  });

  it('names every offending variable at once', () => {
    const err = configErrorFrom({
      RESPAWN_ACTORS: 'nope',
      RESPAWN_MAX_BATCH: '0',
      DATABASE_URL: 'mysql://x',
    });
    expect(err.message).toMatch(/RESPAWN_ACTORS/);
    expect(err.message).toMatch(/RESPAWN_MAX_BATCH/);
    expect(err.message).toMatch(/DATABASE_URL: must be a postgres:\/\/ URL/);
    expect(err.message).not.toMatch(/NATS_URL|LOG_LEVEL|RESPAWN_CONCURRENCY/);
  });
});

describe('roles configuration', () => {
  it('reads the ingress routers to run', () => {
    expect(
      loadWorkerConfig({ RESPAWN_INGRESS: 'telegram, agent,razorpay' }).RESPAWN_INGRESS,
    ).toEqual(['telegram', 'agent', 'razorpay']);
  });

  it('names each Azure setting the effects runner needs when it is turned on', () => {
    expect(() => loadWorkerConfig({ RESPAWN_AZURE_EFFECTS: 'true' })).toThrow(
      /AZURE_SUBSCRIPTION_ID[\s\S]*AZURE_RESOURCE_GROUP[\s\S]*AZURE_SSH_PUBLIC_KEY/,
    );
    const ok = loadWorkerConfig({
      RESPAWN_AZURE_EFFECTS: 'true',
      AZURE_SUBSCRIPTION_ID: 'sub',
      AZURE_RESOURCE_GROUP: 'rg',
      AZURE_SSH_PUBLIC_KEY: 'ssh-ed25519 AAAA test',
    });
    expect(ok.RESPAWN_AZURE_EFFECTS).toBe(true);
  });

  it('gives session VMs a public IP unless the operator turns it off', () => {
    expect(loadWorkerConfig({}).AZURE_VM_PUBLIC_IP).toBe(true);
    expect(loadWorkerConfig({ AZURE_VM_PUBLIC_IP: 'false' }).AZURE_VM_PUBLIC_IP).toBe(false);
  });
});

describe('allocator settings', () => {
  const spotD4 = {
    id: 'spotnc8',
    tier: 'spot',
    size: 'Standard_NC8as_T4_v3',
    zone: '2',
    cores: 8,
    quotaName: 'lowPriorityCores',
    pricePerHourPaise: 5_000,
  };
  const od = { ...defaultAllocatorConfig.candidates[1]! };

  it("keeps the actor's defaults when nothing is set", () => {
    expect(allocatorConfigFrom(loadWorkerConfig({}))).toEqual({
      ...defaultAllocatorConfig,
      diskReconcileMs: 3_600_000,
      diskGraceMs: 1_800_000,
    });
  });

  it('reads the cold time, refresh, reconcile grace and candidates; billing follows the cheapest', () => {
    const cfg = loadWorkerConfig({
      RESPAWN_ALLOC_COLD_SECONDS: '120',
      RESPAWN_ALLOC_REFRESH_SECONDS: '60',
      RESPAWN_ALLOC_RECONCILE_GRACE_SECONDS: '300',
      RESPAWN_ALLOC_CANDIDATES: JSON.stringify([spotD4, od]),
    });
    expect(allocatorConfigFrom(cfg)).toMatchObject({
      coldMs: 120_000,
      refreshMs: 60_000,
      reconcileGraceMs: 300_000,
      candidates: [spotD4, od],
    });
    expect(sessionConfigFrom(cfg).cheapestPricePerHourPaise).toBe(5_000);
    expect(sessionConfigFrom(cfg).onDemandPricePerHourPaise).toBe(od.pricePerHourPaise);
  });

  it.each([
    ['not JSON', '[{'],
    ['an empty list', '[]'],
    ['an unknown tier', JSON.stringify([{ ...spotD4, tier: 'cheap' }])],
    ['an id Azure names cannot carry', JSON.stringify([{ ...spotD4, id: 'Spot_NC8' }])],
    ['a repeated id', JSON.stringify([spotD4, spotD4])],
    ['a price in rupees', JSON.stringify([{ ...spotD4, pricePerHourPaise: 50.5 }])],
    // Billing meters at a positive price: a free rig would fail every Play.
    ['a price of nothing', JSON.stringify([{ ...spotD4, pricePerHourPaise: 0 }])],
    ['a field it does not know', JSON.stringify([{ ...spotD4, prio: 1 }])],
  ])('refuses candidates with %s, naming the variable', (_what, value) => {
    expect(() => loadWorkerConfig({ RESPAWN_ALLOC_CANDIDATES: value })).toThrow(
      /RESPAWN_ALLOC_CANDIDATES/,
    );
  });
});

describe('session timings', () => {
  it("keeps the actor's defaults when nothing is set, and the region and admission", () => {
    expect(
      sessionConfigFrom(
        loadWorkerConfig({ RESPAWN_REGION: 'westeurope', RESPAWN_SESSION_ADMISSION: 'false' }),
      ),
    ).toEqual({
      ...defaultSessionConfig,
      region: 'westeurope',
      regions: ['westeurope'],
      requireAdmission: false,
    });
    // More served regions, the default one first and once.
    expect(
      sessionConfigFrom(
        loadWorkerConfig({
          RESPAWN_REGION: 'westeurope',
          RESPAWN_REGIONS: 'northeurope, westeurope',
        }),
      ).regions,
    ).toEqual(['westeurope', 'northeurope']);
  });

  it('reads each timing in its unit', () => {
    const cfg = sessionConfigFrom(
      loadWorkerConfig({
        RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS: '1800',
        RESPAWN_SESSION_IDLE_WARNING_SECONDS: '300',
        RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS: '45',
        RESPAWN_SESSION_PROVISION_TIMEOUT_SECONDS: '900',
        RESPAWN_SESSION_MAX_RESUMES: '0',
        RESPAWN_SESSION_REPEAT_REPLY_SECONDS: '30',
        RESPAWN_DISK_IDLE_DAYS: '14',
        RESPAWN_DISK_WARNING_DAYS: '2',
      }),
    );
    expect(cfg).toMatchObject({
      idleTimeoutMs: 1_800_000,
      idleWarningMs: 300_000,
      heartbeatLossMs: 45_000,
      provisionTimeoutMs: 900_000,
      maxResumes: 0,
      repeatReplyMs: 30_000,
      diskIdleMs: 14 * 86_400_000,
      diskWarningMs: 2 * 86_400_000,
    });
  });

  it('refuses a warning that would not come before what it warns of, naming it', () => {
    // 600 s of idle timeout against the default 120 s warning is fine; 100 s is not.
    expect(() => loadWorkerConfig({ RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS: '600' })).not.toThrow();
    expect(configErrorFrom({ RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS: '100' }).message).toMatch(
      /RESPAWN_SESSION_IDLE_WARNING_SECONDS: must be less than the idle timeout \(100 s\)/,
    );
    expect(configErrorFrom({ RESPAWN_DISK_IDLE_DAYS: '3' }).message).toMatch(
      /RESPAWN_DISK_WARNING_DAYS: must be less than RESPAWN_DISK_IDLE_DAYS \(3\)/,
    );
    expect(configErrorFrom({ RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS: 'soon' }).message).toMatch(
      /RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS/,
    );
  });
});
