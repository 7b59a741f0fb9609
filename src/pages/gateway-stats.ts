/** The gateway's own numbers for a page: GET /api/v1/stream/stats once a second, as rates. */
interface GatewayRates {
  readonly connections: number;
  readonly deliveriesPerSecond: number;
  readonly ingestPerSecond: number;
  readonly drops: number;
}

export function pollGatewayStats(onRates: (rates: GatewayRates) => void, everyMs = 1000): void {
  let last: { at: number; deliveries: number } | null = null;
  const tick = async () => {
    try {
      const s = await (await fetch('/api/v1/stream/stats', { cache: 'no-store' })).json();
      const at = performance.now();
      const deliveries = Number(s.deliveries_total) || 0;
      const perSecond = last === null ? 0 : ((deliveries - last.deliveries) * 1000) / (at - last.at);
      last = { at, deliveries };
      onRates({
        connections: (Number(s.connections) || 0) + (Number(s.user_connections) || 0),
        deliveriesPerSecond: Math.max(0, Math.round(perSecond)),
        ingestPerSecond: Number(s.ingest?.rate_per_second) || 0,
        drops: (Number(s.drops_total) || 0) + (Number(s.conflations_total) || 0),
      });
    } catch {
      // the gateway is restarting: the state line says so; try again next tick
    }
    setTimeout(() => void tick(), everyMs);
  };
  void tick();
}

export const formatCount = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(n));
