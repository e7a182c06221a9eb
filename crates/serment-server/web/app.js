// Serment patient page (issue 13 §3), first skeleton: no framework, no third-party origin, no
// inline script. Everything it fetches is same-origin (the CSP's connect-src 'self').
const status = document.getElementById('server-status');

async function health() {
  try {
    const r = await fetch('/healthz', { credentials: 'omit', cache: 'no-store' });
    const j = await r.json();
    status.textContent = r.ok && j.status === 'ok' ? 'disponible' : 'indisponible';
    status.dataset.state = r.ok ? 'ok' : 'down';
  } catch {
    status.textContent = 'injoignable';
    status.dataset.state = 'down';
  }
}

health();
