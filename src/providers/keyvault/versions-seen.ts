/**
 * What each secret's last version listing said, packed for a vault of thousands of secrets (≈ 200k entries at 360k
 * credentials): per secret one slot in typed arrays, the current version's 32 hex digits as 16 bytes, instead of an
 * object and a version string per secret. Never a secret value.
 */

export interface VersionsSeen {
  /** The secret list's `updated` when the versions were listed (NaN when it had none). */
  updatedAt: number;
  createdAt: number | undefined;
  seenAt: number;
  current: string | undefined;
  count: number;
  disabled: number;
}

const HEX32 = /^[0-9a-f]{32}$/;
const NO_VERSION = 0;
const HEX_VERSION = 1;
const OTHER_VERSION = 2;

export class VersionsSeenCache {
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];
  private capacity = 0;
  /** Slots handed out so far (in use or free). */
  private used = 0;
  /** updatedAt, createdAt (NaN: none), seenAt per slot. */
  private times = new Float64Array(0);
  /** count, disabled per slot. */
  private counts = new Uint32Array(0);
  private kinds = new Uint8Array(0);
  private hex = new Uint8Array(0);
  /** A current version that is not 32 lowercase hex digits (not seen on Azure, kept exact all the same). */
  private readonly other = new Map<number, string>();

  get size(): number {
    return this.slots.size;
  }

  get(name: string): VersionsSeen | undefined {
    const slot = this.slots.get(name);
    if (slot === undefined) return undefined;
    const created = this.times[slot * 3 + 1]!;
    return {
      updatedAt: this.times[slot * 3]!, createdAt: Number.isNaN(created) ? undefined : created, seenAt: this.times[slot * 3 + 2]!,
      current: this.currentOf(slot), count: this.counts[slot * 2]!, disabled: this.counts[slot * 2 + 1]!,
    };
  }

  set(name: string, seen: VersionsSeen): void {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.grow();
      this.slots.set(name, slot);
    }
    this.times[slot * 3] = seen.updatedAt;
    this.times[slot * 3 + 1] = seen.createdAt ?? Number.NaN;
    this.times[slot * 3 + 2] = seen.seenAt;
    this.counts[slot * 2] = seen.count;
    this.counts[slot * 2 + 1] = seen.disabled;
    this.other.delete(slot);
    const v = seen.current;
    if (v === undefined) this.kinds[slot] = NO_VERSION;
    else if (HEX32.test(v)) {
      this.kinds[slot] = HEX_VERSION;
      this.hex.set(Buffer.from(v, 'hex'), slot * 16);
    } else {
      this.kinds[slot] = OTHER_VERSION;
      // A flat copy: a slice of the id URL would keep the whole URL alive.
      this.other.set(slot, Buffer.from(v, 'utf8').toString('utf8'));
    }
  }

  delete(name: string): void {
    const slot = this.slots.get(name);
    if (slot === undefined) return;
    this.slots.delete(name);
    this.other.delete(slot);
    this.free.push(slot);
  }

  /** Forgets the secrets that are gone, so the cache stays the size of the vault. */
  keepOnly(names: ReadonlySet<string>): void {
    if (this.slots.size <= names.size) return;
    for (const name of [...this.slots.keys()]) if (!names.has(name)) this.delete(name);
  }

  private currentOf(slot: number): string | undefined {
    const kind = this.kinds[slot];
    if (kind === HEX_VERSION) return Buffer.from(this.hex.buffer, this.hex.byteOffset + slot * 16, 16).toString('hex');
    return kind === OTHER_VERSION ? this.other.get(slot) : undefined;
  }

  /** A new slot, doubling the arrays when they are full. */
  private grow(): number {
    const slot = this.used++;
    if (slot >= this.capacity) {
      const capacity = Math.max(64, this.capacity * 2);
      const grown = <T extends Float64Array | Uint32Array | Uint8Array>(from: T, per: number, make: (n: number) => T): T => {
        const to = make(capacity * per);
        to.set(from);
        return to;
      };
      this.times = grown(this.times, 3, (n) => new Float64Array(n));
      this.counts = grown(this.counts, 2, (n) => new Uint32Array(n));
      this.kinds = grown(this.kinds, 1, (n) => new Uint8Array(n));
      this.hex = grown(this.hex, 16, (n) => new Uint8Array(n));
      this.capacity = capacity;
    }
    return slot;
  }
}
