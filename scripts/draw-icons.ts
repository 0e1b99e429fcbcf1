// Draws appPackage/color.png (192×192) and outline.png (32×32): a shield with a key, Keywarden's mark.
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

type Rgba = [number, number, number, number];
type Shader = (x: number, y: number) => Rgba | undefined;

const TEAL: Rgba = [14, 124, 102, 255];
const WHITE: Rgba = [255, 255, 255, 255];

/** Shield in a unit box: flat top, straight sides, curving to a point at the bottom. */
function inShield(u: number, v: number, inset = 0): boolean {
  const top = 0.04 + inset;
  if (v < top || v > 1 - inset * 1.6) return false;
  const t = (v - 0.5) / 0.5;
  const half = v < 0.5 ? 0.46 - inset : (0.46 - inset) * (1 - Math.pow(Math.max(0, t), 1.7));
  return Math.abs(u - 0.5) <= half;
}

function inKey(u: number, v: number): boolean {
  const dx = u - 0.5, dy = v - 0.33;
  const r = Math.hypot(dx, dy);
  if (r <= 0.15 && r >= 0.07) return true;
  if (Math.abs(u - 0.5) <= 0.035 && v >= 0.46 && v <= 0.82) return true;
  if (u >= 0.5 && u <= 0.63 && ((v >= 0.64 && v <= 0.69) || (v >= 0.75 && v <= 0.8))) return true;
  return false;
}

const colorShader: Shader = (u, v) => {
  const corner = 0.18;
  const cx = Math.min(Math.max(u, corner), 1 - corner), cy = Math.min(Math.max(v, corner), 1 - corner);
  if (Math.hypot(u - cx, v - cy) > corner) return undefined;
  const su = (u - 0.17) / 0.66, sv = (v - 0.13) / 0.74;
  if (inShield(su, sv)) return inKey(su, sv) ? TEAL : WHITE;
  return TEAL;
};

const outlineShader: Shader = (u, v) => {
  const su = (u - 0.1) / 0.8, sv = (v - 0.04) / 0.92;
  const ring = inShield(su, sv) && !inShield(su, sv, 0.1);
  const keyhole = Math.hypot(su - 0.5, sv - 0.4) <= 0.12 || (Math.abs(su - 0.5) <= 0.05 && sv >= 0.4 && sv <= 0.68);
  return ring || (inShield(su, sv) && keyhole) ? WHITE : undefined;
};

/** Renders with 4×4 supersampling so edges are anti-aliased. */
function render(size: number, shader: Shader): Buffer {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  const n = 4;
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = 0; sy < n; sy++) for (let sx = 0; sx < n; sx++) {
        const c = shader((x + (sx + 0.5) / n) / size, (y + (sy + 0.5) / n) / size);
        if (c) { r += c[0] * c[3]; g += c[1] * c[3]; b += c[2] * c[3]; a += c[3]; }
      }
      const o = y * (size * 4 + 1) + 1 + x * 4;
      raw[o] = a ? Math.round(r / a) : 0;
      raw[o + 1] = a ? Math.round(g / a) : 0;
      raw[o + 2] = a ? Math.round(b / a) : 0;
      raw[o + 3] = Math.round(a / (n * n));
    }
  }
  return png(size, size, raw);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function png(width: number, height: number, raw: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

writeFileSync('appPackage/color.png', render(192, colorShader));
writeFileSync('appPackage/outline.png', render(32, outlineShader));
console.log('wrote appPackage/color.png (192x192) and appPackage/outline.png (32x32)');
