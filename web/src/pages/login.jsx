// login.jsx: the sign-in form (POST /api/v1/auth/login sets the session cookie).
import { useState } from 'preact/hooks';
import { api, setCsrf } from '../api.js';

export function Login({ onLogin }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const r = await api('/auth/login', { method: 'POST', body: { email, password } });
      setCsrf(r.csrfToken);
      await onLogin();
    } catch (err) {
      setError(err.status === 429 ? 'Too many failed attempts; wait a few minutes.' : err.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={submit} class="card" aria-labelledby="login-title">
        <h1 id="login-title">Sextant</h1>
        <label>Email<input type="email" name="email" autocomplete="username" required value={email}
          onInput={(e) => setEmail(e.target.value)} autoFocus /></label>
        <label>Password<input type="password" name="password" autocomplete="current-password" required value={password}
          onInput={(e) => setPassword(e.target.value)} /></label>
        {error && <p class="error" role="alert">{error}</p>}
        <button class="btn primary" type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
