/** The rotating token server in its own process, as a real provider would be: `fork` it and read its URL. */
import { startTokenServer } from '../tests/support/token-server.js';

const latencyMs = Number(process.argv[2] ?? 0);
const server = await startTokenServer({ latencyMs });
process.send?.({ url: server.url });
process.on('disconnect', () => void server.close().then(() => process.exit(0)));
