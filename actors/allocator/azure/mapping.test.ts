/** What the provider asks Azure for, without any server: the choices that keep a player's disk safe. */
import { describe, expect, it } from 'vitest';
import {
  computerName,
  imageReference,
  matchesFilter,
  tagsOf,
  toVmInfo,
  vmParameters,
} from './mapping.ts';
import type { VmSpec } from './port.ts';

const spec = (over: Partial<VmSpec> = {}): VmSpec => ({
  name: 'vm-session-0123456789abcdef',
  nicName: 'nic-s',
  size: 'Standard_NC4as_T4_v3',
  tier: 'spot',
  dataDiskName: 'disk-p',
  image: 'pub:offer:sku:1.0.0',
  admin: { username: 'respawn', password: 'pw' },
  tags: { player: 'p', session: 's', tier: 'spot', purpose: 'session-vm' },
  ...over,
});
const ctx = {
  location: 'centralindia',
  nicId: '/x/networkInterfaces/nic-s',
  dataDiskId: '/x/disks/disk-p',
};

describe('vmParameters', () => {
  it('a Spot VM is evicted by deletion, pays up to On-Demand, and never takes the data disk with it', () => {
    const vm = vmParameters(spec(), ctx);
    expect(vm).toMatchObject({
      priority: 'Spot',
      evictionPolicy: 'Delete',
      billingProfile: { maxPrice: -1 },
    });
    expect(vm.storageProfile?.dataDisks).toEqual([
      {
        lun: 0,
        createOption: 'Attach',
        deleteOption: 'Detach',
        managedDisk: { id: '/x/disks/disk-p' },
      },
    ]);
    expect(vm.storageProfile?.osDisk?.deleteOption).toBe('Delete');
    expect(vm.networkProfile?.networkInterfaces).toEqual([
      { id: '/x/networkInterfaces/nic-s', primary: true, deleteOption: 'Delete' },
    ]);
    expect(vm.tags).toEqual({
      app: 'respawn',
      player: 'p',
      session: 's',
      tier: 'spot',
      purpose: 'session-vm',
    });
  });

  it('an On-Demand VM is Regular with no eviction policy, and keeps the data disk too', () => {
    const vm = vmParameters(spec({ tier: 'on_demand', zone: '3' }), ctx);
    expect(vm.priority).toBe('Regular');
    expect(vm.evictionPolicy).toBeUndefined();
    expect(vm.zones).toEqual(['3']);
    expect(vm.storageProfile?.dataDisks?.[0]?.deleteOption).toBe('Detach');
  });

  it('base64-encodes userData and sets up SSH for Linux images', () => {
    const vm = vmParameters(
      spec({ userData: 'hello', admin: { username: 'u', sshPublicKey: 'ssh-ed25519 AAA' } }),
      ctx,
    );
    expect(vm.userData).toBe(Buffer.from('hello').toString('base64'));
    expect(vm.osProfile?.linuxConfiguration?.disablePasswordAuthentication).toBe(true);
    expect(vm.osProfile?.adminPassword).toBeUndefined();
  });
});

describe('helpers', () => {
  it('keeps Windows computer names within 15 characters, distinct per VM', () => {
    const a = computerName('vm-session-aaaaaaaaaaaaaaaa');
    const b = computerName('vm-session-aaaaaaaaaaaaaaab');
    expect(a.length).toBeLessThanOrEqual(15);
    expect(a).not.toBe(b);
    expect(computerName('vm-short')).toBe('vm-short');
  });

  it('reads an image as a resource id or publisher:offer:sku:version', () => {
    expect(imageReference('/subscriptions/s/images/i')).toEqual({
      id: '/subscriptions/s/images/i',
    });
    expect(imageReference('a:b:c:latest')).toEqual({
      publisher: 'a',
      offer: 'b',
      sku: 'c',
      version: 'latest',
    });
    expect(() => imageReference('a:b')).toThrow(/publisher:offer:sku:version/);
  });

  it('lists only Respawn resources that match every given tag', () => {
    const tags = tagsOf({ player: 'p', session: 's', tier: 'spot', purpose: 'session-vm' });
    expect(matchesFilter(tags, {})).toBe(true);
    expect(matchesFilter(tags, { player: 'p', tier: 'spot' })).toBe(true);
    expect(matchesFilter(tags, { player: 'q' })).toBe(false);
    expect(matchesFilter({ player: 'p' }, { player: 'p' })).toBe(false);
    expect(matchesFilter(undefined, {})).toBe(false);
  });

  it('reads the power state from the instance view, unknown without one', () => {
    const base = { location: 'x', name: 'vm', priority: 'Spot' as const };
    expect(toVmInfo(base).powerState).toBe('unknown');
    expect(
      toVmInfo({ ...base, instanceView: { statuses: [{ code: 'PowerState/deallocated' }] } })
        .powerState,
    ).toBe('deallocated');
    expect(toVmInfo(base).tier).toBe('spot');
  });
});
