/**
 * The telemetry stream's two WebSocket paths: the open stream and the share-location variant
 * (edge/stream-route.ts serves both). Here, at the feature's root, so the share-location routes can
 * hand out the share stream's URL without importing the telemetry feature's edge code.
 */
export const STREAM_PATH = '/api/v1/stream';
export const SHARE_STREAM_PATH = '/api/v1/public/share-location/stream';
