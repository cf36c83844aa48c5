// A real OpenID provider (oidc-provider) on 127.0.0.1 for the browser tests (tests/e2e/test_sso.py).
// node provider.mjs PORT REDIRECT_URI... ; prints "ready <issuer>" when it listens.
// Accounts: any login with the password "op-secret"; the login form's "method" says how the person
// signed in: "pwd" (acr urn:countersign:pwd, amr [pwd]) or "mfa" (acr urn:countersign:mfa, amr [pwd, otp]).
// POST /_test/stale makes the next sign-in report the previous auth_time, like a provider that
// silently reuses its session whatever prompt=login and max_age=0 asked.
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, ...redirectUris] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const PASSWORD = 'op-secret';
const METHODS = {
  pwd: { acr: 'urn:countersign:pwd', amr: ['pwd'] },
  mfa: { acr: 'urn:countersign:mfa', amr: ['pwd', 'otp'] },
};
const lastLogin = new Map();
let staleNext = false;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'countersign',
    client_secret: 'countersign-test-secret',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    require_auth_time: true,
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.com`, email_verified: true, name: id };
      },
    };
  },
  claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'] },
  acrValues: Object.values(METHODS).map((m) => m.acr),
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  cookies: { keys: ['countersign-test-cookie-key'] },
  conformIdTokenClaims: false,
});
provider.proxy = false;

const page = (uid, error = '') => `<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider sign-in</h1>${error ? `<p role="alert">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Login <input name="login" autocomplete="off"></label>
<label>Secret <input name="password" type="password"></label>
<label>Method <select name="method"><option value="mfa">Password and one-time code</option><option value="pwd">Password only</option></select></label>
<button type="submit">Continue</button></form></body></html>`;

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return Object.fromEntries(new URLSearchParams(data));
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === '/_test/stale' && req.method === 'POST') {
      staleNext = true;
      res.writeHead(204).end();
      return;
    }
    const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (match) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login' && !match[2]) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(page(details.uid));
        return;
      }
      if (details.prompt.name === 'login') {
        const form = await body(req);
        if (!form.login || form.password !== PASSWORD) {
          res.writeHead(200, { 'content-type': 'text/html' }).end(page(details.uid, 'Wrong login or secret.'));
          return;
        }
        const now = Math.floor(Date.now() / 1000);
        const ts = staleNext && lastLogin.has(form.login) ? lastLogin.get(form.login) : now;
        staleNext = false;
        lastLogin.set(form.login, ts);
        const method = METHODS[form.method] || METHODS.pwd;
        await provider.interactionFinished(req, res, { login: { accountId: form.login, ts, ...method } },
          { mergeWithLastSubmission: false });
        return;
      }
      // consent: this test provider grants what the client asks
      const { params, session: { accountId }, prompt } = details;
      const grant = details.grantId ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      if (prompt.details.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  }
});
server.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
