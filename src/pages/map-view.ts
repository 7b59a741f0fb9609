/**
 * A map drawn on a canvas, with no tiles and no network: a graticule (degree grid with labels), a
 * scale bar, each device's trail and a marker with its heading. The view fits the devices until
 * the user pans (drag) or zooms (wheel); "fit" goes back. Drawing happens once per animation frame
 * and only when something changed, so thousands of devices updating many times a second cost one
 * redraw per frame.
 */
import { TRAIL_POINTS, type Track, type Tracks } from './tracks.js';

/** Trail segments drawn in all, at most (each device's trail is shortened to fit). */
const TRAIL_SEGMENTS = 40_000;
/** Above this many devices, markers are plain squares (no outline, no heading tick). */
const DETAILED_MARKERS = 1_500;
/** Pixels per degree at the closest zoom (about 1 m per pixel). */
const MAX_SCALE = 1e5;
const NICE_STEPS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 45];

export class MapView {
  private readonly ctx: CanvasRenderingContext2D;
  private dirty = true;
  /** View centre and pixels per degree of longitude; null: fit the devices. */
  private view: { lat: number; lon: number; scale: number } | null = null;
  selected: string | null = null;
  /** Frames drawn (tests and the stats panel read it). */
  frames = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly tracks: Tracks,
  ) {
    this.ctx = canvas.getContext('2d')!;
    new ResizeObserver(() => this.invalidate()).observe(canvas);
    this.bindGestures();
    const loop = () => {
      if (this.dirty) this.draw();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  invalidate(): void {
    this.dirty = true;
  }

  fit(): void {
    this.view = null;
    this.invalidate();
  }

  /** Centres on a device, keeping the zoom. */
  focus(track: Track): void {
    const v = this.currentView();
    this.view = { lat: track.lat, lon: track.lon, scale: v.scale };
    this.invalidate();
  }

  private currentView(): { lat: number; lon: number; scale: number } {
    if (this.view !== null) return this.view;
    let minLat = Infinity,
      maxLat = -Infinity,
      minLon = Infinity,
      maxLon = -Infinity;
    for (const t of this.tracks.byId.values()) {
      minLat = Math.min(minLat, t.lat);
      maxLat = Math.max(maxLat, t.lat);
      minLon = Math.min(minLon, t.lon);
      maxLon = Math.max(maxLon, t.lon);
    }
    if (minLat === Infinity) return { lat: 0, lon: 0, scale: this.canvas.clientWidth / 360 };
    const lat = (minLat + maxLat) / 2;
    const k = Math.cos((lat * Math.PI) / 180);
    const spanLon = Math.max(maxLon - minLon, 0.002);
    const spanLat = Math.max(maxLat - minLat, 0.002) / k;
    const w = this.canvas.clientWidth * 0.85,
      h = this.canvas.clientHeight * 0.85;
    return { lat, lon: (minLon + maxLon) / 2, scale: this.clampScale(Math.min(w / spanLon, h / spanLat)) };
  }

  /** Between the whole world across the canvas and a few centimetres across it. */
  private clampScale(scale: number): number {
    return Math.min(MAX_SCALE, Math.max(Math.max(1, this.canvas.clientWidth) / 360, scale));
  }

  private bindGestures(): void {
    let drag: { x: number; y: number } | null = null;
    this.canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY };
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener('pointerup', () => (drag = null));
    this.canvas.addEventListener('pointermove', (e) => {
      if (drag === null) return;
      const v = this.currentView();
      const k = Math.cos((v.lat * Math.PI) / 180);
      this.view = { lat: v.lat + (e.clientY - drag.y) / (v.scale / k), lon: v.lon - (e.clientX - drag.x) / v.scale, scale: v.scale };
      drag = { x: e.clientX, y: e.clientY };
      this.invalidate();
    });
    this.canvas.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const v = this.currentView();
        this.view = { ...v, scale: this.clampScale(v.scale * (e.deltaY < 0 ? 1.25 : 0.8)) };
        this.invalidate();
      },
      { passive: false },
    );
  }

  private draw(): void {
    this.dirty = false;
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth,
      h = this.canvas.clientHeight;
    if (w <= 0 || h <= 0) return; // hidden or squeezed to nothing: nothing to draw (and no scale)
    this.frames++;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#0f1720';
    ctx.fillRect(0, 0, w, h);
    const v = this.currentView();
    const k = Math.cos((v.lat * Math.PI) / 180);
    const x = (lon: number) => w / 2 + (lon - v.lon) * v.scale;
    const y = (lat: number) => h / 2 - ((lat - v.lat) * v.scale) / k;
    this.drawGrid(ctx, w, h, v, k, x, y);

    // Level of detail: the raster work is per segment and per marker, so with many devices each
    // trail gets shorter (about 40 000 segments in all) and markers become squares without a heading.
    const devices = this.tracks.byId.size;
    const trailPoints = Math.max(2, Math.min(TRAIL_POINTS, Math.floor(TRAIL_SEGMENTS / Math.max(1, devices))));
    const detailed = devices <= DETAILED_MARKERS;

    // Trails: one path each, oldest to newest.
    ctx.lineWidth = detailed ? 1.5 : 1;
    ctx.strokeStyle = 'rgba(56, 189, 248, 0.35)';
    ctx.beginPath();
    for (const t of this.tracks.byId.values()) {
      const skip = Math.max(0, t.trailLength - trailPoints);
      for (let i = skip; i < t.trailLength; i++) {
        const slot = ((t.trailStart + i) % TRAIL_POINTS) * 2;
        const px = x(t.trail[slot + 1]),
          py = y(t.trail[slot]);
        if (i === skip) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      }
    }
    ctx.stroke();

    // Markers: a dot, and a short tick for the heading.
    const now = Date.now();
    ctx.fillStyle = '#38bdf8';
    ctx.strokeStyle = '#e0f2fe';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    const ticks = new Path2D();
    const stale = new Path2D();
    for (const t of this.tracks.byId.values()) {
      const px = x(t.lon),
        py = y(t.lat);
      if (px < -10 || py < -10 || px > w + 10 || py > h + 10) continue;
      const path = now - t.lastSeen > 30_000 ? stale : null;
      if (!detailed) {
        (path ?? ctx).rect(px - 2, py - 2, 4, 4);
        continue;
      }
      if (path !== null) {
        path.moveTo(px + 3.5, py);
        path.arc(px, py, 3.5, 0, Math.PI * 2);
      } else {
        ctx.moveTo(px + 3.5, py);
        ctx.arc(px, py, 3.5, 0, Math.PI * 2);
      }
      if (t.heading !== null) {
        const a = ((t.heading - 90) * Math.PI) / 180;
        ticks.moveTo(px, py);
        ticks.lineTo(px + Math.cos(a) * 9, py + Math.sin(a) * 9);
      }
    }
    ctx.fill();
    if (detailed) ctx.stroke(ticks);
    ctx.fillStyle = '#64748b';
    ctx.fill(stale);

    const sel = this.selected === null ? undefined : this.tracks.byId.get(this.selected);
    if (sel !== undefined) {
      const px = x(sel.lon),
        py = y(sel.lat);
      ctx.strokeStyle = '#fbbf24';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(px, py, 9, 0, Math.PI * 2);
      ctx.stroke();
      ctx.fillStyle = '#fde68a';
      ctx.font = '12px system-ui, sans-serif';
      ctx.fillText(sel.id, px + 12, py - 10);
    }
  }

  private drawGrid(
    ctx: CanvasRenderingContext2D,
    w: number,
    h: number,
    v: { lat: number; lon: number; scale: number },
    k: number,
    x: (lon: number) => number,
    y: (lat: number) => number,
  ): void {
    const degPerPx = 1 / v.scale;
    const step = NICE_STEPS.find((s) => s / degPerPx >= 90) ?? 90;
    // Only the lines on the canvas, and never more than a few hundred (the scale is clamped anyway).
    const lon0 = Math.max(-180, v.lon - (w / 2) * degPerPx),
      lon1 = Math.min(180, v.lon + (w / 2) * degPerPx, lon0 + step * 400);
    const lat0 = Math.max(-90, v.lat - (h / 2) * degPerPx * k),
      lat1 = Math.min(90, v.lat + (h / 2) * degPerPx * k, lat0 + step * 400);
    ctx.strokeStyle = '#1e293b';
    ctx.lineWidth = 1;
    ctx.fillStyle = '#475569';
    ctx.font = '11px system-ui, sans-serif';
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    ctx.beginPath();
    for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
      ctx.moveTo(Math.round(x(lon)) + 0.5, 0);
      ctx.lineTo(Math.round(x(lon)) + 0.5, h);
      ctx.fillText(lon.toFixed(digits), x(lon) + 3, h - 6);
    }
    for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
      ctx.moveTo(0, Math.round(y(lat)) + 0.5);
      ctx.lineTo(w, Math.round(y(lat)) + 0.5);
      ctx.fillText(lat.toFixed(digits), 4, y(lat) - 3);
    }
    ctx.stroke();
    // Scale bar: a round distance near 120 px.
    const kmPerPx = degPerPx * 111.32 * k;
    const target = kmPerPx * 120;
    const nice = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000].find((d) => d >= target / 2) ?? 2000;
    const px = nice / kmPerPx;
    ctx.strokeStyle = '#94a3b8';
    ctx.beginPath();
    ctx.moveTo(w - 20 - px, h - 20);
    ctx.lineTo(w - 20, h - 20);
    ctx.stroke();
    ctx.fillStyle = '#94a3b8';
    ctx.fillText(nice < 1 ? `${nice * 1000} m` : `${nice} km`, w - 20 - px, h - 26);
  }
}
