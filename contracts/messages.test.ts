import { describe, expect, it } from 'vitest';
import * as contracts from './index.ts';
import {
  DemoAdd,
  DemoAdded,
  DemoFail,
  DemoRemind,
  DemoReminded,
  ErrorCodes,
  MAX_PAYLOAD_BYTES,
  SessionStart,
  SessionSettings,
  SessionStatus,
  SessionStop,
  TerminalError,
  TimerFired,
  TelegramSend,
  BillingAdmit,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingMeterClose,
  BillingTopup,
  BillingBalance,
  BillingRegister,
  BillingRegistered,
  BillingHistory,
  SessionAdmission,
  BillingAdjust,
  BillingLinkStatus,
  BillingPaymentEvent,
  BillingPaymentHeld,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  RazorpayCreateLink,
  RazorpayFetchLink,
  SessionAllocated,
  SessionQueued,
  SessionAllocFailed,
  SessionVmCheck,
  SessionVmReleased,
  SessionAgentReady,
  SessionHeartbeat,
  SessionPreempt,
  SessionChanged,
  AllocRequest,
  AllocRelease,
  AllocCreateResult,
  AllocDeleteResult,
  AllocUsage,
  AllocDrain,
  AllocInventory,
  AllocDecided,
  AzureCreateVm,
  AzureDeleteVm,
  AzureRefresh,
  AgentReport,
  SessionDiskArchived,
  SessionDiskMissing,
  SessionDiskFound,
  AzureArchiveDisk,
  AzureReconcileDisks,
  AllocDiskRound,
  AllocDiskDecided,
  MAX_DISK_SUSPECTS,
  defineMessage,
  messageSet,
  type ErrorCode,
  type MessageDef,
} from './index.ts';

const enc = new TextEncoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

function terminalFrom(fn: () => unknown): TerminalError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TerminalError);
    return err as TerminalError;
  }
  throw new Error('expected a TerminalError, nothing was thrown');
}

function expectTerminal(fn: () => unknown, code: ErrorCode): void {
  expect(terminalFrom(fn).code).toBe(code);
}

interface Row {
  readonly def: MessageDef;
  /** A valid value, every field given (so decode(encode(v)) is v plus `type`). */
  readonly valid: unknown;
  /** Raw JSON objects (`type` included) that must fail validation, with why. */
  readonly invalid: readonly (readonly [why: string, raw: Record<string, unknown>])[];
}

/** One row per message kind: the valid example is type-checked against the definition. */
function row<T extends string, P>(
  def: MessageDef<T, P>,
  valid: NoInfer<P>,
  invalid: Row['invalid'],
): Row {
  return { def, valid, invalid };
}

const AT = '2030-01-02T03:04:05.000Z';
const LATER = '2030-01-02T03:04:06.500Z';

const table: readonly Row[] = [
  row(SessionStart, { requestedBy: 'player', chatId: '-100123', region: 'eu1' }, [
    ['requestedBy missing', { type: SessionStart.type }],
    ['requestedBy not a requester', { type: SessionStart.type, requestedBy: 'robot' }],
    ['region with upper case', { type: SessionStart.type, requestedBy: 'player', region: 'EU' }],
    ['empty chatId', { type: SessionStart.type, requestedBy: 'player', chatId: '' }],
  ]),
  row(SessionStop, { requestedBy: 'operator', reason: 'idle_timeout', note: 'quiet night' }, [
    ['reason missing', { type: SessionStop.type, requestedBy: 'player' }],
    [
      'metered session ids not a list',
      {
        type: SessionStop.type,
        requestedBy: 'system',
        reason: 'out_of_credit',
        meteredSessionIds: '42-1',
      },
    ],
    ['unknown reason', { type: SessionStop.type, requestedBy: 'player', reason: 'bored' }],
    [
      'session id with a dot',
      { type: SessionStop.type, requestedBy: 'player', reason: 'player', sessionId: '42.1' },
    ],
    [
      'note too long',
      { type: SessionStop.type, requestedBy: 'player', reason: 'player', note: 'x'.repeat(501) },
    ],
  ]),
  row(SessionStatus, { requestedBy: 'system', chatId: '42' }, [
    ['requestedBy a number', { type: SessionStatus.type, requestedBy: 1 }],
    ['chatId a number', { type: SessionStatus.type, requestedBy: 'player', chatId: 42 }],
  ]),
  row(DemoAdd, { n: 3, amount: -7, sentAt: 1_700_000_000_000 }, [
    ['n missing', { type: DemoAdd.type, amount: 1 }],
    ['n negative', { type: DemoAdd.type, n: -1 }],
    ['n fractional', { type: DemoAdd.type, n: 1.5 }],
    ['n a string', { type: DemoAdd.type, n: '1' }],
    ['amount too large', { type: DemoAdd.type, n: 1, amount: 1_000_001 }],
  ]),
  row(DemoFail, { mode: 'retryable', times: 3, n: 9 }, [
    ['mode missing', { type: DemoFail.type }],
    ['unknown mode', { type: DemoFail.type, mode: 'sometimes' }],
    ['times zero', { type: DemoFail.type, mode: 'retryable', times: 0 }],
    ['times over 100', { type: DemoFail.type, mode: 'retryable', times: 101 }],
  ]),
  row(DemoRemind, { name: 'wake_up-1', at: AT, cancel: false }, [
    ['name missing', { type: DemoRemind.type }],
    ['name with a dot', { type: DemoRemind.type, name: 'a.b' }],
    ['at not ISO', { type: DemoRemind.type, name: 'r', at: 'tomorrow' }],
    ['cancel a string', { type: DemoRemind.type, name: 'r', cancel: 'yes' }],
  ]),
  row(DemoAdded, { key: 'k1', n: 4, total: 10, sentAt: 12.5 }, [
    ['total missing', { type: DemoAdded.type, key: 'k1', n: 1 }],
    ['key a number', { type: DemoAdded.type, key: 1, n: 1, total: 1 }],
  ]),
  row(DemoReminded, { key: 'k1', name: 'r1', dueAt: AT, firedAt: LATER }, [
    ['firedAt missing', { type: DemoReminded.type, key: 'k1', name: 'r1', dueAt: AT }],
    ['dueAt not ISO', { type: DemoReminded.type, key: 'k', name: 'r', dueAt: 5, firedAt: AT }],
  ]),
  row(
    TelegramSend,
    {
      chatId: '-100200',
      text: 'Your rig is ready',
      buttons: [[{ text: 'Stop', data: 'stop' }]],
      editKey: 'session:s1',
      fresh: true,
      collapseKey: 'status',
      url: 'https://rzp.io/i/abc',
    },
    [
      ['fresh false', { type: TelegramSend.type, chatId: '1', text: 'x', fresh: false }],
      ['chatId not digits', { type: TelegramSend.type, chatId: 'abc', text: 'x' }],
      ['text empty', { type: TelegramSend.type, chatId: '1', text: '' }],
      ['text too long', { type: TelegramSend.type, chatId: '1', text: 'x'.repeat(4097) }],
      ['url not a URL', { type: TelegramSend.type, chatId: '1', text: 'x', url: 'nope' }],
      [
        'collapseKey with a space',
        { type: TelegramSend.type, chatId: '1', text: 'x', collapseKey: 'a b' },
      ],
    ],
  ),
  row(BillingAdmit, { sessionId: 's1', chatId: '42', cheapestPricePerHourPaise: 3000 }, [
    ['price zero', { type: BillingAdmit.type, sessionId: 's1', cheapestPricePerHourPaise: 0 }],
    [
      'price fractional',
      { type: BillingAdmit.type, sessionId: 's1', cheapestPricePerHourPaise: 1.5 },
    ],
    [
      'sessionId with a dot',
      { type: BillingAdmit.type, sessionId: 'a.b', cheapestPricePerHourPaise: 1 },
    ],
  ]),
  row(
    BillingMeterOpen,
    { sessionId: 's1', chatId: '42', tier: 'spot', pricePerHourPaise: 3000, at: AT },
    [
      [
        'unknown tier',
        {
          type: BillingMeterOpen.type,
          sessionId: 's1',
          tier: 'cheap',
          pricePerHourPaise: 1,
          at: AT,
        },
      ],
      [
        'at missing',
        { type: BillingMeterOpen.type, sessionId: 's1', tier: 'spot', pricePerHourPaise: 1 },
      ],
    ],
  ),
  row(BillingMeterPause, { sessionId: 's1', at: AT }, [
    ['at not ISO', { type: BillingMeterPause.type, sessionId: 's1', at: 'now' }],
  ]),
  row(
    BillingMeterResume,
    { sessionId: 's1', tier: 'on_demand', pricePerHourPaise: 9000, at: LATER },
    [
      [
        'price negative',
        {
          type: BillingMeterResume.type,
          sessionId: 's1',
          tier: 'spot',
          pricePerHourPaise: -1,
          at: AT,
        },
      ],
    ],
  ),
  row(BillingMeterClose, { sessionId: 's1', at: LATER, reason: 'player' }, [
    ['reason missing', { type: BillingMeterClose.type, sessionId: 's1', at: AT }],
  ]),
  row(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: 50_000 }, [
    ['amount zero', { type: BillingTopup.type, requestId: 'r1', chatId: '42', amountPaise: 0 }],
    [
      'amount in rupees with decimals',
      { type: BillingTopup.type, requestId: 'r1', chatId: '42', amountPaise: 500.5 },
    ],
  ]),
  row(BillingBalance, { chatId: '42' }, [['chatId missing', { type: BillingBalance.type }]]),
  row(BillingRegister, { chatId: '42' }, [['chatId missing', { type: BillingRegister.type }]]),
  row(BillingRegistered, { playerId: 'p1', at: '2026-12-07T05:00:00.000Z' }, [
    ['at not a time', { type: BillingRegistered.type, playerId: 'p1', at: 'yesterday' }],
  ]),
  row(BillingHistory, { chatId: '42', limit: 5 }, [
    ['limit over 50', { type: BillingHistory.type, chatId: '42', limit: 51 }],
  ]),
  row(
    SessionAdmission,
    { sessionId: 's1', allowed: false, balancePaise: -5, requiredPaise: 1500 },
    [
      [
        'allowed missing',
        { type: SessionAdmission.type, sessionId: 's1', balancePaise: 0, requiredPaise: 0 },
      ],
    ],
  ),
  row(
    BillingPaymentLinkCreated,
    {
      topupId: 'r1',
      referenceId: 'tu_0123456789abcdef',
      linkId: 'plink_ExjpAUN3gVHrPJ',
      shortUrl: 'https://rzp.io/i/nxrHnLJ',
      amountPaise: 50_000,
      currency: 'INR',
    },
    [
      [
        'linkId without the plink_ prefix',
        {
          type: BillingPaymentLinkCreated.type,
          topupId: 'r1',
          referenceId: 'x',
          linkId: 'ExjpAUN3gVHrPJ',
          shortUrl: 'https://rzp.io/i/x',
          amountPaise: 1,
          currency: 'INR',
        },
      ],
      [
        'currency in lower case',
        {
          type: BillingPaymentLinkCreated.type,
          topupId: 'r1',
          referenceId: 'x',
          linkId: 'plink_A',
          shortUrl: 'https://rzp.io/i/x',
          amountPaise: 1,
          currency: 'inr',
        },
      ],
    ],
  ),
  row(
    BillingPaymentLinkFailed,
    { topupId: 'r1', error: { code: 'BAD_REQUEST_ERROR', message: 'bad', retryable: false } },
    [['error missing', { type: BillingPaymentLinkFailed.type, topupId: 'r1' }]],
  ),
  row(
    BillingPaymentEvent,
    {
      event: 'payment_link.paid',
      topupId: 'r1',
      paymentId: 'pay_FOGsH8uHkF2FbR',
      linkId: 'plink_FOGqq3O6E5bkml',
      refundId: 'rfnd_FP8QHiV938haTz',
      amountPaise: 50_000,
      currency: 'INR',
      eventId: 'evt_1',
      errorReason: 'card declined',
    },
    [
      [
        'unknown event',
        {
          type: BillingPaymentEvent.type,
          event: 'payment.authorized',
          topupId: 'r1',
          paymentId: 'pay_A',
          amountPaise: 1,
          currency: 'INR',
        },
      ],
      [
        'paymentId missing',
        {
          type: BillingPaymentEvent.type,
          event: 'payment.captured',
          topupId: 'r1',
          amountPaise: 1,
          currency: 'INR',
        },
      ],
      [
        'amount in rupees with decimals',
        {
          type: BillingPaymentEvent.type,
          event: 'payment.captured',
          topupId: 'r1',
          paymentId: 'pay_A',
          amountPaise: 10.5,
          currency: 'INR',
        },
      ],
    ],
  ),
  row(
    BillingLinkStatus,
    {
      topupId: 'r1',
      linkId: 'plink_FOGqq3O6E5bkml',
      status: 'paid',
      amountPaidPaise: 50_000,
      currency: 'INR',
      payments: [{ paymentId: 'pay_FOGsH8uHkF2FbR', amountPaise: 50_000, status: 'captured' }],
    },
    [
      [
        'unknown status',
        {
          type: BillingLinkStatus.type,
          topupId: 'r1',
          linkId: 'plink_A',
          status: 'done',
          amountPaidPaise: 0,
          currency: 'INR',
          payments: [],
        },
      ],
      [
        'payment without an id',
        {
          type: BillingLinkStatus.type,
          topupId: 'r1',
          linkId: 'plink_A',
          status: 'paid',
          amountPaidPaise: 1,
          currency: 'INR',
          payments: [{ amountPaise: 1, status: 'captured' }],
        },
      ],
    ],
  ),
  row(
    BillingAdjust,
    { adjustmentId: 'ticket-991', amountPaise: -2_500, note: 'goodwill', requestedBy: 'operator' },
    [
      [
        'zero amount',
        {
          type: BillingAdjust.type,
          adjustmentId: 'a',
          amountPaise: 0,
          note: 'x',
          requestedBy: 'operator',
        },
      ],
      [
        'requested by a player',
        {
          type: BillingAdjust.type,
          adjustmentId: 'a',
          amountPaise: 1,
          note: 'x',
          requestedBy: 'player',
        },
      ],
    ],
  ),
  row(
    BillingPaymentHeld,
    {
      playerId: '42',
      reason: 'amount_mismatch',
      topupId: 'r1',
      paymentId: 'pay_A1',
      refundId: 'rfnd_B2',
      amountPaise: 40_000,
      currency: 'INR',
      expectedAmountPaise: 50_000,
      expectedCurrency: 'INR',
    },
    [
      [
        'unknown reason',
        {
          type: BillingPaymentHeld.type,
          playerId: '42',
          reason: 'because',
          topupId: 'r1',
          amountPaise: 1,
          currency: 'INR',
        },
      ],
    ],
  ),
  row(
    RazorpayCreateLink,
    {
      playerId: '42',
      topupId: 'r1',
      referenceId: 'tu_0123456789abcdef',
      amountPaise: 50_000,
      currency: 'INR',
      description: 'Respawn top-up',
      expireBy: LATER,
    },
    [
      [
        'reference id over 40 characters',
        {
          type: RazorpayCreateLink.type,
          playerId: '42',
          topupId: 'r1',
          referenceId: 'x'.repeat(41),
          amountPaise: 1,
          currency: 'INR',
          description: 'd',
          expireBy: AT,
        },
      ],
      [
        'player id with a dot',
        {
          type: RazorpayCreateLink.type,
          playerId: '4.2',
          topupId: 'r1',
          referenceId: 'x',
          amountPaise: 1,
          currency: 'INR',
          description: 'd',
          expireBy: AT,
        },
      ],
    ],
  ),
  row(RazorpayFetchLink, { playerId: '42', topupId: 'r1', linkId: 'plink_FOGqq3O6E5bkml' }, [
    ['linkId missing', { type: RazorpayFetchLink.type, playerId: '42', topupId: 'r1' }],
  ]),
  row(
    SessionAllocated,
    {
      sessionId: 's1',
      region: 'centralindia',
      tier: 'spot',
      size: 'Standard_NC4as_T4_v3',
      zone: '1',
      pricePerHourPaise: 3000,
      vmName: 'vm-s1-a1-spotnc4',
    },
    [
      [
        'tier unknown',
        {
          type: SessionAllocated.type,
          sessionId: 's1',
          region: 'centralindia',
          tier: 'cheap',
          size: 'x',
          pricePerHourPaise: 1,
          vmName: 'v',
        },
      ],
      [
        'vmName with a dot',
        {
          type: SessionAllocated.type,
          sessionId: 's1',
          region: 'centralindia',
          tier: 'spot',
          size: 'x',
          pricePerHourPaise: 1,
          vmName: 'v.1',
        },
      ],
    ],
  ),
  row(SessionSettings, { requestedBy: 'player', chatId: '42', spotOnly: true }, [
    [
      'spotOnly not a boolean',
      { type: SessionSettings.type, requestedBy: 'player', spotOnly: 'yes' },
    ],
  ]),
  row(SessionQueued, { sessionId: 's1', position: 3, estimateSeconds: 900 }, [
    [
      'position zero',
      { type: SessionQueued.type, sessionId: 's1', position: 0, estimateSeconds: 1 },
    ],
  ]),
  row(SessionAllocFailed, { sessionId: 's1', reason: 'no luck' }, [
    ['reason empty', { type: SessionAllocFailed.type, sessionId: 's1', reason: '' }],
  ]),
  row(SessionVmReleased, { sessionId: 's1', vmName: 'vm-1' }, [
    ['sessionId missing', { type: SessionVmReleased.type }],
  ]),
  row(SessionVmCheck, { sessionId: 's1', vmName: 'vm-1', region: 'centralindia' }, [
    ['vmName missing', { type: SessionVmCheck.type, sessionId: 's1', region: 'centralindia' }],
  ]),
  row(
    SessionAgentReady,
    { sessionId: 's1', vmName: 'vm-1', host: '10.0.0.4', port: 47989, pin: '1234' },
    [
      [
        'port out of range',
        {
          type: SessionAgentReady.type,
          sessionId: 's1',
          vmName: 'v',
          host: 'h',
          port: 70000,
          pin: '1234',
        },
      ],
      [
        'pin not digits',
        {
          type: SessionAgentReady.type,
          sessionId: 's1',
          vmName: 'v',
          host: 'h',
          port: 1,
          pin: 'abcd',
        },
      ],
    ],
  ),
  row(SessionHeartbeat, { sessionId: 's1', vmName: 'vm-1', at: AT, lastInputAt: AT }, [
    ['at not ISO', { type: SessionHeartbeat.type, sessionId: 's1', vmName: 'v', at: 'now' }],
  ]),
  row(SessionPreempt, { sessionId: 's1', vmName: 'vm-1', eventId: 'e-1', notBefore: LATER }, [
    ['eventId missing', { type: SessionPreempt.type, sessionId: 's1', vmName: 'v' }],
  ]),
  row(
    SessionChanged,
    {
      sessionId: 's1',
      phase: 'ready',
      previous: 'provisioning',
      reason: 'resumed',
      tier: 'spot',
      pricePerHourPaise: 3000,
      vmName: 'vm-1',
      at: AT,
    },
    [['unknown phase', { type: SessionChanged.type, phase: 'dancing', at: AT }]],
  ),
  row(AllocRequest, { sessionId: 's1', playerId: 'p1', allocation: 2, diskZone: '1' }, [
    [
      'allocation zero',
      { type: AllocRequest.type, sessionId: 's1', playerId: 'p1', allocation: 0 },
    ],
    [
      'playerId with a star',
      { type: AllocRequest.type, sessionId: 's1', playerId: 'p*', allocation: 1 },
    ],
  ]),
  row(AllocRelease, { sessionId: 's1', playerId: 'p1', reason: 'player', allocation: 2 }, [
    ['reason missing', { type: AllocRelease.type, sessionId: 's1', playerId: 'p1' }],
    [
      'allocation not a whole number',
      {
        type: AllocRelease.type,
        sessionId: 's1',
        playerId: 'p1',
        reason: 'player',
        allocation: 1.5,
      },
    ],
  ]),
  row(
    AllocCreateResult,
    {
      sessionId: 's1',
      vmName: 'vm-1',
      ok: false,
      error: { kind: 'throttled', code: 'TooManyRequests', message: 'slow', retryAfterMs: 5000 },
    },
    [
      [
        'unknown error kind',
        {
          type: AllocCreateResult.type,
          sessionId: 's1',
          vmName: 'v',
          ok: false,
          error: { kind: 'meh', code: 'x', message: 'y' },
        },
      ],
    ],
  ),
  row(AllocDeleteResult, { sessionId: 's1', vmName: 'vm-1', ok: true }, [
    ['ok missing', { type: AllocDeleteResult.type, sessionId: 's1', vmName: 'v' }],
  ]),
  row(AllocUsage, { at: AT, usages: [{ name: 'lowPriorityCores', current: 4, limit: 40 }] }, [
    [
      'limit fractional',
      { type: AllocUsage.type, at: AT, usages: [{ name: 'x', current: 1, limit: 1.5 }] },
    ],
  ]),
  row(AllocDrain, { draining: true, reason: 'maintenance until 18:00' }, [
    ['reason empty', { type: AllocDrain.type, draining: true, reason: '' }],
    ['draining missing', { type: AllocDrain.type, reason: 'x' }],
  ]),
  row(
    AllocInventory,
    { at: AT, vms: [{ name: 'vm-1', sessionId: 's1', purpose: 'respawn-session' }] },
    [['vm name with a space', { type: AllocInventory.type, at: AT, vms: [{ name: 'vm 1' }] }]],
  ),
  row(
    AllocDecided,
    {
      sessionId: 's1',
      decision: 'cold',
      candidate: 'spotnc4',
      vmName: 'vm-1',
      detail: 'SkuNotAvailable',
      at: AT,
    },
    [['unknown decision', { type: AllocDecided.type, decision: 'maybe', at: AT }]],
  ),
  row(
    AzureCreateVm,
    {
      sessionId: 's1',
      playerId: 'p1',
      vmName: 'vm-1',
      nicName: 'vm-1-nic',
      diskName: 'disk-p1',
      size: 'Standard_NC4as_T4_v3',
      priority: 'spot',
      zone: '1',
      tags: { player: 'p1', purpose: 'respawn-session' },
    },
    [
      [
        'priority unknown',
        {
          type: AzureCreateVm.type,
          sessionId: 's1',
          playerId: 'p1',
          vmName: 'v',
          nicName: 'n',
          diskName: 'd',
          size: 's',
          priority: 'low',
          tags: {},
        },
      ],
      [
        'tag key upper case',
        {
          type: AzureCreateVm.type,
          sessionId: 's1',
          playerId: 'p1',
          vmName: 'v',
          nicName: 'n',
          diskName: 'd',
          size: 's',
          priority: 'spot',
          tags: { Player: 'p' },
        },
      ],
    ],
  ),
  row(AzureDeleteVm, { sessionId: 's1', vmName: 'vm-1', nicName: 'vm-1-nic' }, [
    ['nicName missing', { type: AzureDeleteVm.type, sessionId: 's1', vmName: 'v' }],
  ]),
  row(AzureRefresh, { usage: true, inventory: false }, [
    ['usage a string', { type: AzureRefresh.type, usage: 'yes', inventory: true }],
  ]),
  row(
    AgentReport,
    {
      id: 'r1',
      vmName: 'vm-1',
      sessionId: 's1',
      playerId: 'p1',
      kind: 'ready',
      at: AT,
      host: '10.0.0.4',
      port: 47989,
      pin: '1234',
      lastInputAt: AT,
      eventId: 'e1',
      notBefore: LATER,
    },
    [
      [
        'unknown kind',
        {
          type: AgentReport.type,
          id: 'r1',
          vmName: 'v',
          sessionId: 's',
          playerId: 'p',
          kind: 'dance',
          at: AT,
        },
      ],
      [
        'id with a dot',
        {
          type: AgentReport.type,
          id: 'r.1',
          vmName: 'v',
          sessionId: 's',
          playerId: 'p',
          kind: 'ready',
          at: AT,
        },
      ],
    ],
  ),
  row(
    SessionDiskArchived,
    { diskName: 'disk-p1', snapshotName: 'snap-disk-p1', ok: false, reason: 'in use' },
    [['ok missing', { type: SessionDiskArchived.type, diskName: 'd', snapshotName: 's' }]],
  ),
  row(SessionDiskMissing, { diskName: 'disk-p1', seq: 3, snapshotName: 'snap-disk-p1' }, [
    ['seq missing', { type: SessionDiskMissing.type, diskName: 'disk-p1' }],
    ['seq negative', { type: SessionDiskMissing.type, diskName: 'disk-p1', seq: -1 }],
  ]),
  row(SessionDiskFound, { diskName: 'disk-p1', seq: 0, region: 'centralindia', zone: '2' }, [
    ['region missing', { type: SessionDiskFound.type, diskName: 'disk-p1', seq: 0 }],
    [
      'diskName with a dot',
      { type: SessionDiskFound.type, diskName: 'disk.p1', seq: 0, region: 'centralindia' },
    ],
  ]),
  row(
    AzureReconcileDisks,
    {
      at: AT,
      graceMs: 1_800_000,
      suspects: [
        { finding: 'missing', diskName: 'disk-p1', playerId: 'p1', seq: 2, since: AT },
        { finding: 'unowned', diskName: 'Hand_Made.disk', since: AT },
      ],
    },
    [
      [
        'unknown finding',
        {
          type: AzureReconcileDisks.type,
          at: AT,
          graceMs: 0,
          suspects: [{ finding: 'odd', diskName: 'd', since: AT }],
        },
      ],
      [
        'too many suspects',
        {
          type: AzureReconcileDisks.type,
          at: AT,
          graceMs: 0,
          suspects: Array.from({ length: MAX_DISK_SUSPECTS + 1 }, () => ({
            finding: 'unowned',
            diskName: 'd',
            since: AT,
          })),
        },
      ],
    ],
  ),
  row(
    AllocDiskRound,
    {
      at: AT,
      suspects: [{ finding: 'unrecorded', diskName: 'disk-p2', playerId: 'p2', seq: 0, since: AT }],
      counts: {
        disks: 3,
        snapshots: 1,
        records: 4,
        missing: 0,
        unrecorded: 1,
        unowned: 0,
        acted: 0,
        waiting: 1,
      },
    },
    [['counts missing', { type: AllocDiskRound.type, at: AT, suspects: [] }]],
  ),
  row(
    AllocDiskDecided,
    {
      decision: 'disk_unowned',
      diskName: 'disk-ghost',
      playerId: 'ghost',
      detail: 'player ghost has no session state',
      at: AT,
    },
    [
      [
        'unknown decision',
        { type: AllocDiskDecided.type, decision: 'deleted', diskName: 'd', detail: '', at: AT },
      ],
      [
        'diskName with a slash',
        {
          type: AllocDiskDecided.type,
          decision: 'disk_adopted',
          diskName: 'a/b',
          detail: '',
          at: AT,
        },
      ],
    ],
  ),
  row(AzureArchiveDisk, { playerId: 'p1', diskName: 'disk-p1', snapshotName: 'snap-disk-p1' }, [
    [
      'diskName with a slash',
      { type: AzureArchiveDisk.type, playerId: 'p1', diskName: 'a/b', snapshotName: 's' },
    ],
  ]),
  row(
    TimerFired,
    {
      timerId: '12345',
      name: 'reminder',
      dueAt: AT,
      firedAt: LATER,
      data: { a: [1, 'x', null, true], b: { c: 2 } },
    },
    [
      [
        'timerId not digits',
        { type: TimerFired.type, timerId: 'x1', name: 'n', dueAt: AT, firedAt: AT },
      ],
      [
        'timerId a number',
        { type: TimerFired.type, timerId: 1, name: 'n', dueAt: AT, firedAt: AT },
      ],
      ['name empty', { type: TimerFired.type, timerId: '1', name: '', dueAt: AT, firedAt: AT }],
    ],
  ),
];

const allDefs = table.map((r) => r.def);

function isMessageDef(v: unknown): v is MessageDef {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.type === 'string' &&
    typeof o.schema === 'object' &&
    o.schema !== null &&
    typeof o.encode === 'function' &&
    typeof o.decode === 'function'
  );
}

describe('the example table', () => {
  const exported = Object.entries(contracts as Record<string, unknown>).flatMap(
    ([name, value]): [string, MessageDef][] => (isMessageDef(value) ? [[name, value]] : []),
  );

  it('finds the message definitions exported from contracts/index.ts', () => {
    expect(exported.map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'SessionStart',
        'SessionStop',
        'SessionStatus',
        'DemoAdd',
        'DemoFail',
        'DemoRemind',
        'DemoAdded',
        'DemoReminded',
        'TimerFired',
      ]),
    );
  });

  it('has an example for every exported message definition', () => {
    const missing = exported.filter(([, def]) => !allDefs.includes(def)).map(([name]) => name);
    expect(missing).toEqual([]);
  });

  it('has one row per message type, each with at least one invalid example', () => {
    expect(new Set(allDefs.map((d) => d.type)).size).toBe(table.length);
    for (const r of table) expect(r.invalid.length).toBeGreaterThan(0);
  });
});

describe.each(table.map((r) => [r.def.type, r] as const))('%s', (type, r) => {
  it('encodes a valid value and decodes it back with `type` filled in', () => {
    const bytes = r.def.encode(r.valid);
    expect(r.def.decode(bytes)).toEqual({ ...(r.valid as object), type });
    expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual({
      ...(r.valid as object),
      type,
    });
  });

  it('is decoded by a message set of every kind to the same value', () => {
    expect(messageSet(allDefs).decode(r.def.encode(r.valid))).toEqual({
      ...(r.valid as object),
      type,
    });
  });

  it.each(r.invalid)('rejects %s with invalid_payload', (_why, raw) => {
    expectTerminal(() => r.def.decode(json(raw)), ErrorCodes.invalidPayload);
    expectTerminal(() => messageSet([r.def]).decode(json(raw)), ErrorCodes.invalidPayload);
  });

  it('rejects a valid body under another `type` literal with invalid_payload', () => {
    const raw = { ...(r.valid as object), type: 'other.kind.v1' };
    expectTerminal(() => r.def.decode(json(raw)), ErrorCodes.invalidPayload);
  });

  it('rejects a valid body with no `type` with invalid_payload', () => {
    expectTerminal(() => r.def.decode(json(r.valid)), ErrorCodes.invalidPayload);
  });

  it('names the type and the failing field in the error message', () => {
    const [, raw] = r.invalid[0]!;
    expect(terminalFrom(() => r.def.decode(json(raw))).message).toContain(`invalid ${type}`);
  });

  it('refuses to encode an invalid value', () => {
    for (const [, raw] of r.invalid) expect(() => r.def.encode(raw)).toThrow();
  });

  it('rejects non-JSON bytes with invalid_json', () => {
    expectTerminal(() => r.def.decode(enc.encode('{not json')), ErrorCodes.invalidJson);
  });
});

describe('decoding untrusted bytes', () => {
  const addedPrefix = enc.encode(`{"type":"demo.added.v1","n":1,"total":1,"key":"`);
  const addedSuffix = enc.encode('"}');
  const withKeyBytes = (bytes: number[]): Uint8Array =>
    new Uint8Array([...addedPrefix, ...bytes, ...addedSuffix]);

  it('decodes valid UTF-8 inside a string (the fixture is sound)', () => {
    expect(DemoAdded.decode(withKeyBytes([0xc3, 0xa9])).key).toBe('é');
  });

  it.each([
    ['a lone continuation byte', [0xff]],
    ['a truncated sequence', [0xc3]],
    ['an overlong encoding', [0xc0, 0x80]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
  ])('rejects invalid UTF-8 (%s) with invalid_json', (_what, bytes) => {
    expectTerminal(() => DemoAdded.decode(withKeyBytes(bytes)), ErrorCodes.invalidJson);
    expectTerminal(() => messageSet(allDefs).decode(withKeyBytes(bytes)), ErrorCodes.invalidJson);
  });

  it.each([
    ['empty bytes', ''],
    ['plain text', 'hello'],
    ['truncated JSON', '{"type":"demo.add.v1","n":'],
    ['single quotes', "{'type':'demo.add.v1'}"],
  ])('rejects %s with invalid_json', (_what, text) => {
    expectTerminal(() => DemoAdd.decode(enc.encode(text)), ErrorCodes.invalidJson);
    expectTerminal(() => messageSet(allDefs).decode(enc.encode(text)), ErrorCodes.invalidJson);
  });

  /** A valid session.stop.v1 padded with trailing JSON whitespace to exactly `size` bytes. */
  function paddedStop(size: number): Uint8Array {
    const body = JSON.stringify({
      type: SessionStop.type,
      requestedBy: 'player',
      reason: 'player',
    });
    return enc.encode(body + ' '.repeat(size - body.length));
  }

  it('accepts a payload of exactly MAX_PAYLOAD_BYTES', () => {
    const bytes = paddedStop(MAX_PAYLOAD_BYTES);
    expect(bytes.byteLength).toBe(MAX_PAYLOAD_BYTES);
    expect(SessionStop.decode(bytes).reason).toBe('player');
  });

  it('rejects a payload over MAX_PAYLOAD_BYTES with payload_too_large', () => {
    const bytes = paddedStop(MAX_PAYLOAD_BYTES + 1);
    expectTerminal(() => SessionStop.decode(bytes), ErrorCodes.payloadTooLarge);
    expectTerminal(() => messageSet(allDefs).decode(bytes), ErrorCodes.payloadTooLarge);
  });

  it('checks the size before parsing (a huge non-JSON payload is too large, not invalid)', () => {
    const bytes = new Uint8Array(MAX_PAYLOAD_BYTES + 1).fill(0xff);
    expectTerminal(() => DemoAdd.decode(bytes), ErrorCodes.payloadTooLarge);
  });
});

describe('messageSet', () => {
  const set = messageSet([DemoAdd, DemoFail]);

  it('lists its types', () => {
    expect(set.types).toEqual([DemoAdd.type, DemoFail.type]);
    expect(set.defs).toEqual([DemoAdd, DemoFail]);
  });

  it('dispatches on `type` and applies that definition’s defaults', () => {
    expect(set.decode(json({ type: DemoFail.type, mode: 'terminal' }))).toEqual({
      type: DemoFail.type,
      mode: 'terminal',
      times: 1,
    });
    expect(set.decode(json({ type: DemoAdd.type, n: 2 }))).toEqual({
      type: DemoAdd.type,
      n: 2,
      amount: 1,
    });
  });

  it('rejects a type outside the set with unknown_type, even one defined elsewhere', () => {
    expectTerminal(() => set.decode(DemoRemind.encode({ name: 'r' })), ErrorCodes.unknownType);
    expectTerminal(() => set.decode(json({ type: 'nope.nope.v1', n: 1 })), ErrorCodes.unknownType);
  });

  it.each([
    ['no type', { n: 1 }],
    ['a numeric type', { type: 1 }],
    ['a null type', { type: null }],
    ['a JSON number', 42],
    ['JSON null', null],
    ['a JSON array', [DemoAdd.type]],
    ['a JSON string', DemoAdd.type],
  ])('rejects %s with unknown_type', (_what, raw) => {
    expectTerminal(() => set.decode(json(raw)), ErrorCodes.unknownType);
  });

  it('rejects a known type with a bad body with invalid_payload', () => {
    expectTerminal(() => set.decode(json({ type: DemoAdd.type })), ErrorCodes.invalidPayload);
  });
});

describe('defineMessage', () => {
  it.each(['demo.add', 'Demo.add.v1', 'demo.add.v0', 'demo.add.V1', 'demo..add.v1', 'add.v1x'])(
    'refuses the type name %s',
    (name) => {
      expect(() => defineMessage(name, {})).toThrow(/is not <area>\.<name>\.v<N>/);
    },
  );

  it('accepts <area>.<name>.v<N> names', () => {
    expect(defineMessage('area.some_name.v12', {}).type).toBe('area.some_name.v12');
  });

  it('overrides a `type` field passed to encode with its own', () => {
    const value = { n: 1, amount: 1, type: 'evil.type.v1' };
    const decoded = JSON.parse(new TextDecoder().decode(DemoAdd.encode(value))) as unknown;
    expect(decoded).toEqual({ n: 1, amount: 1, type: DemoAdd.type });
  });
});
