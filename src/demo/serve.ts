/**
 * Runs the demo's sample service on its own (used by docker/compose.yaml):
 * `node src/demo/serve.ts` listens on $HOST:$PORT (default 127.0.0.1:8080).
 */
import { createSampleService } from './sample-service.ts';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const server = createSampleService().listen(port, host, () => {
  process.stdout.write(`sample service listening on http://${host}:${port}\n`);
});
const stop = (): void => { server.close(() => process.exit(0)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
