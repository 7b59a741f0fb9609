/** The tests' free fixed port: the helper lives in scripts/ so the benchmark shares it. */
export { freeFixedPort } from '../../scripts/free-fixed-port.js';
