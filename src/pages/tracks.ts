/**
 * What the pages know of each device: its last position, speed, heading, when it was last seen,
 * and a short trail, kept in a fixed-size ring per device (no allocation per position).
 */
export const TRAIL_POINTS = 40;

export interface Track {
  readonly id: string;
  lat: number;
  lon: number;
  speed: number | null;
  heading: number | null;
  /** Local time (ms) the last position arrived. */
  lastSeen: number;
  /** The gateway's timestamp of the last position. */
  timestamp: string;
  /** Ring of [lat, lon] pairs, oldest overwritten first. */
  readonly trail: Float64Array;
  trailStart: number;
  trailLength: number;
}

const num = (v: unknown): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : null;

/** Latitude and longitude of a payload: LAT/LON (the references), or lat/lon, latitude/longitude. */
function coordinates(data: Record<string, unknown>): [number, number] | null {
  const lat = num(data.LAT ?? data.lat ?? data.latitude);
  const lon = num(data.LON ?? data.lon ?? data.lng ?? data.longitude);
  if (lat === null || lon === null || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return [lat, lon];
}

export class Tracks {
  readonly byId = new Map<string, Track>();
  /** Positions taken since the last call to takeCount(). */
  private taken = 0;

  update(id: string, data: Record<string, unknown>, timestamp: string): Track | null {
    const at = coordinates(data);
    if (at === null) return null;
    let t = this.byId.get(id);
    if (t === undefined) {
      t = {
        id,
        lat: at[0],
        lon: at[1],
        speed: null,
        heading: null,
        lastSeen: 0,
        timestamp,
        trail: new Float64Array(TRAIL_POINTS * 2),
        trailStart: 0,
        trailLength: 0,
      };
      this.byId.set(id, t);
    }
    t.lat = at[0];
    t.lon = at[1];
    t.speed = num(data.SPEED ?? data.speed);
    t.heading = num(data.HEADING ?? data.heading);
    t.lastSeen = Date.now();
    t.timestamp = timestamp;
    const slot = (t.trailStart + t.trailLength) % TRAIL_POINTS;
    t.trail[slot * 2] = at[0];
    t.trail[slot * 2 + 1] = at[1];
    if (t.trailLength < TRAIL_POINTS) t.trailLength++;
    else t.trailStart = (t.trailStart + 1) % TRAIL_POINTS;
    this.taken++;
    return t;
  }

  takeCount(): number {
    const n = this.taken;
    this.taken = 0;
    return n;
  }
}

/** "3 s ago", "2 min ago". */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}
