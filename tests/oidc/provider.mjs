// The organisation's identity provider for tests/sso.rs: oidc-provider with
// its development login and consent pages, which a test drives over HTTP as a
// browser would.
//
// Arguments: a JSON file holding { port, clients: [...], accounts: { id:
// { email, groups, amr } } }. Accounts are read from the file at every login,
// so a test changes someone's groups by rewriting it. An account's `amr` says
// which methods its sign-ins use (RFC 8176: ["pwd", "otp"] for a second
// factor), as a provider enforcing one would. Prints `listening <issuer>`.

import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const file = process.argv[2];
const read = () => JSON.parse(readFileSync(file, 'utf8'));
const { port, clients } = read();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients,
  clientBasedCORS: () => true,
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    // The methods of the sign-in go into the ID token with the subject.
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['given_name', 'family_name', 'name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const account = read().accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: account.email,
          email_verified: true,
          given_name: account.given_name ?? 'Sso',
          family_name: account.family_name ?? id,
          groups: account.groups ?? [],
        };
      },
    };
  },
  // Rollcall listens on loopback in the tests, which oidc-provider's guard
  // against requests to special-use addresses refuses by default.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600 },
});
provider.proxy = false;
// The development login records only who signed in; an account's `amr` is
// added to the login's result as the provider's own login would.
const saveInteraction = provider.Interaction.prototype.save;
provider.Interaction.prototype.save = async function save(...args) {
  const login = this.result?.login;
  if (login?.accountId && !login.amr) {
    const amr = read().accounts[login.accountId]?.amr;
    if (amr) login.amr = amr;
  }
  return saveInteraction.apply(this, args);
};
provider.on('backchannel.error', (ctx, err, client) => {
  console.error(`backchannel logout to ${client.clientId} failed: ${err.message} ${err.cause ?? ''}`);
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
