// setup.jsx: getting started for one project: the OTLP endpoint, an ingest key (made here
// for admins; the secret is shown once) and ready-to-paste SDK and Collector settings.
import { useState } from 'preact/hooks';
import { call, pp } from '../api.js';
import { ErrorBox } from '../components.jsx';
import { useSession, roleOf, atLeast } from '../session.js';

function Copy({ text, label }) {
  const [done, setDone] = useState(false);
  return (
    <div class="snippet">
      <pre aria-label={label}>{text}</pre>
      <button class="btn small" onClick={() => navigator.clipboard.writeText(text).then(() => { setDone(true); setTimeout(() => setDone(false), 1500); }, () => {})}>
        {done ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}

export function Setup({ project }) {
  const { me } = useSession();
  const admin = atLeast(roleOf(me, project), 'admin');
  const [key, setKey] = useState('');
  const [err, setErr] = useState(null);
  const endpoint = location.origin;
  const k = key || 'sxk_...';
  const makeKey = async () => {
    setErr(null);
    try {
      const r = await call(pp(project, '/keys'), { method: 'POST', body: { name: `getting-started-${new Date().toISOString().slice(0, 10)}` } });
      setKey(r.key);
    } catch (ex) { setErr(ex); }
  };
  const env = `export OTEL_EXPORTER_OTLP_ENDPOINT="${endpoint}"
export OTEL_EXPORTER_OTLP_HEADERS="x-api-key=${k}"
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_SERVICE_NAME=my-service`;
  const node = `// npm i @opentelemetry/sdk-node @opentelemetry/auto-instrumentations-node
import { NodeSDK } from '@opentelemetry/sdk-node';
import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';
new NodeSDK({ instrumentations: [getNodeAutoInstrumentations()] }).start();
// endpoint and key come from the OTEL_EXPORTER_OTLP_* variables above`;
  const python = `pip install opentelemetry-distro opentelemetry-exporter-otlp
opentelemetry-bootstrap -a install
opentelemetry-instrument python app.py   # with the variables above`;
  const collector = `exporters:
  otlphttp/sextant:
    endpoint: ${endpoint}
    headers: { x-api-key: "${k}" }
    compression: gzip
service:
  pipelines:
    traces:  { receivers: [otlp], exporters: [otlphttp/sextant] }
    metrics: { receivers: [otlp], exporters: [otlphttp/sextant] }
    logs:    { receivers: [otlp], exporters: [otlphttp/sextant] }`;
  return (
    <section>
      <h1>Getting started</h1>
      <div class="card">
        <h2>1. Endpoint and key</h2>
        <p>OTLP/HTTP endpoint: <code data-testid="otlp-endpoint">{endpoint}</code> (paths <code>/v1/traces</code>, <code>/v1/logs</code>, <code>/v1/metrics</code>; protobuf or JSON, gzip or not).</p>
        {key ? <p class="notice" role="status">Your new ingest key (shown once, copy it now): <code class="secret">{key}</code></p>
          : admin ? <p><button class="btn primary" onClick={makeKey}>Create an ingest key</button> <span class="muted">or use one from Settings.</span></p>
            : <p class="muted">Ask an admin of this project for an ingest key; the snippets below show where it goes.</p>}
        <ErrorBox error={err} what="a key" doing="create" />
      </div>
      <div class="card"><h2>2. Any OpenTelemetry SDK (environment)</h2><Copy text={env} label="Environment variables" /></div>
      <div class="card"><h2>Node.js</h2><Copy text={node} label="Node.js setup" /></div>
      <div class="card"><h2>Python</h2><Copy text={python} label="Python setup" /></div>
      <div class="card"><h2>OpenTelemetry Collector</h2><Copy text={collector} label="Collector configuration" /></div>
    </section>
  );
}
