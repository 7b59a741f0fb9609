/**
 * Position model for simulated vehicles: a seeded, deterministic path that moves smoothly around a
 * centre point. Same options and the same sequence of `advance()` steps give the same fixes, so
 * tests can assert on it without the network.
 *
 * Guarantees (checked by tests, relied on by the simulator):
 * - speed stays in [0, maxSpeedKmh] and changes by at most MAX_ACCEL (or MAX_BRAKE) per second;
 * - heading stays in [0, 360) and turns no faster than the lateral-acceleration limit allows;
 * - the vehicle steers back once it is past 70 % of `radiusKm`, so it stays near the centre.
 */

interface GpsFix {
  readonly lat: number;
  readonly lon: number;
  /** km/h */
  readonly speedKmh: number;
  /** Degrees clockwise from true north, in [0, 360). */
  readonly headingDeg: number;
}

interface GpsPathOptions {
  readonly centerLat: number;
  readonly centerLon: number;
  /** Roaming radius around the centre, km. */
  readonly radiusKm: number;
  /** Any integer; equal seeds give equal paths. */
  readonly seed: number;
  /** Default 90 km/h. */
  readonly maxSpeedKmh?: number;
}

const EARTH_RADIUS_KM = 6371.0088;
/** m/s² — a brisk but ordinary car. */
const MAX_ACCEL = 2.5;
const MAX_BRAKE = 3.5;
/** m/s² of lateral acceleration allowed in a turn; bounds the turn rate at speed. */
const MAX_LATERAL = 3;
/** deg/s — the steering limit at walking pace. */
const MAX_TURN_RATE = 30;
/** Larger steps are split so a late timer does not produce a kinked path. */
const MAX_SUBSTEP_S = 1;

const toRad = (deg: number): number => (deg * Math.PI) / 180;
const toDeg = (rad: number): number => (rad * 180) / Math.PI;
/** Maps any angle to [0, 360). */
const normalizeDeg = (deg: number): number => ((deg % 360) + 360) % 360;
/** Maps any angle difference to (-180, 180]. */
const signedDeg = (deg: number): number => 180 - normalizeDeg(180 - deg);

/** Small, fast, seedable PRNG (Mulberry32); returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Great-circle distance, km. */
export function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = toRad(lat2 - lat1);
  const dLon = toRad(lon2 - lon1);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRad(lat1)) * Math.cos(toRad(lat2)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Initial great-circle bearing from point 1 to point 2, degrees in [0, 360). */
function bearingDeg(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const p1 = toRad(lat1);
  const p2 = toRad(lat2);
  const dl = toRad(lon2 - lon1);
  const y = Math.sin(dl) * Math.cos(p2);
  const x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
  return normalizeDeg(toDeg(Math.atan2(y, x)));
}

/** Point reached from (lat, lon) after `km` along `bearing` degrees. */
function destination(lat: number, lon: number, bearing: number, km: number): { lat: number; lon: number } {
  const d = km / EARTH_RADIUS_KM;
  const p1 = toRad(lat);
  const b = toRad(bearing);
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = toRad(lon) + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return { lat: toDeg(p2), lon: ((toDeg(l2) + 540) % 360) - 180 };
}

export class GpsPath {
  private readonly rng: () => number;
  private readonly opts: Required<GpsPathOptions>;
  private lat: number;
  private lon: number;
  /** m/s */
  private speed: number;
  private targetSpeed: number;
  private heading: number;
  /** deg/s, a mean-reverting random process so bends are smooth rather than jittery. */
  private turnRate = 0;

  constructor(options: GpsPathOptions) {
    this.opts = { maxSpeedKmh: 90, ...options };
    this.rng = mulberry32(options.seed);
    // Uniform over a disc of 80 % of the radius: r = R·√u.
    const start = destination(options.centerLat, options.centerLon, this.rng() * 360, 0.8 * options.radiusKm * Math.sqrt(this.rng()));
    this.lat = start.lat;
    this.lon = start.lon;
    this.heading = this.rng() * 360;
    this.targetSpeed = this.pickTargetSpeed();
    this.speed = this.targetSpeed * this.rng();
  }

  get fix(): GpsFix {
    return { lat: this.lat, lon: this.lon, speedKmh: this.speed * 3.6, headingDeg: normalizeDeg(this.heading) };
  }

  /** Moves the vehicle forward by `dtSeconds` (≥ 0) and returns the new fix. */
  advance(dtSeconds: number): GpsFix {
    if (!(dtSeconds >= 0) || !Number.isFinite(dtSeconds)) {
      throw new RangeError(`dtSeconds must be a finite number ≥ 0, got ${dtSeconds}`);
    }
    let left = dtSeconds;
    while (left > 0) {
      const dt = Math.min(MAX_SUBSTEP_S, left);
      this.step(dt);
      left -= dt;
    }
    return this.fix;
  }

  private step(dt: number): void {
    // About one change of driving intent every 20 s: stop, city street or avenue.
    if (this.rng() < dt / 20) this.targetSpeed = this.pickTargetSpeed();
    const dv = this.targetSpeed - this.speed;
    const limit = (dv >= 0 ? MAX_ACCEL : MAX_BRAKE) * dt;
    this.speed = Math.max(0, this.speed + Math.max(-limit, Math.min(limit, dv)));

    // Ornstein–Uhlenbeck turn rate: reverts to straight driving, wanders by a Gaussian kick.
    this.turnRate += -0.5 * this.turnRate * dt + 6 * Math.sqrt(dt) * this.gaussian();

    const fromCenter = distanceKm(this.opts.centerLat, this.opts.centerLon, this.lat, this.lon);
    const soft = 0.7 * this.opts.radiusKm;
    if (fromCenter > soft) {
      // Past the soft edge, blend the turn rate towards "head for the centre"; full weight at R.
      const home = bearingDeg(this.lat, this.lon, this.opts.centerLat, this.opts.centerLon);
      const weight = Math.min(1, (fromCenter - soft) / (this.opts.radiusKm - soft));
      const wanted = signedDeg(home - this.heading) * 0.5;
      this.turnRate += weight * (wanted - this.turnRate) * Math.min(1, 2 * dt);
    }

    // A car cannot turn on the spot; a tight bend at speed is limited by lateral grip (ω = a / v).
    const maxTurn = this.speed < 0.5 ? 0 : Math.min(MAX_TURN_RATE, toDeg(MAX_LATERAL / this.speed));
    this.turnRate = Math.max(-maxTurn, Math.min(maxTurn, this.turnRate));
    this.heading = normalizeDeg(this.heading + this.turnRate * dt);

    if (this.speed > 0) {
      const next = destination(this.lat, this.lon, this.heading, (this.speed * dt) / 1000);
      this.lat = next.lat;
      this.lon = next.lon;
    }
  }

  /** m/s */
  private pickTargetSpeed(): number {
    const u = this.rng();
    const max = this.opts.maxSpeedKmh / 3.6;
    if (u < 0.1) return 0; // traffic light, delivery stop
    if (u < 0.7) return Math.min(max, (20 + this.rng() * 30) / 3.6); // city streets
    return Math.min(max, (50 + this.rng() * 40) / 3.6); // avenues
  }

  /** Standard normal via Box–Muller. */
  private gaussian(): number {
    const u = 1 - this.rng(); // (0, 1], keeps log finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rng());
  }
}
