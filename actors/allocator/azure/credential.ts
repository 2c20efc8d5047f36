/** Credentials for Azure: a service principal, the ambient identity, or an offline token for the fake. */
import { createRequire } from 'node:module';
import type * as Identity from '@azure/identity';
import type { TokenCredential } from '@azure/identity';

export interface AzureCredentialConfig {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
}

/**
 * A service principal when tenant, client id and secret are all given; otherwise
 * DefaultAzureCredential (managed identity on Azure, environment variables, `az login`).
 * `@azure/identity` (and MSAL under it) is loaded only here, so runs against the fake never
 * load it. It is required rather than imported because eslint-plugin-import-x's no-cycle rule
 * crashes following MSAL's imports (no resolver for them in eslint.config.js).
 */
export function createAzureCredential(config: AzureCredentialConfig = {}): TokenCredential {
  const { tenantId, clientId, clientSecret } = config;
  const given = [tenantId, clientId, clientSecret].filter((v) => v !== undefined && v !== '');
  if (given.length > 0 && given.length < 3) {
    throw new Error('an Azure service principal needs all of tenantId, clientId and clientSecret');
  }
  const identity = createRequire(import.meta.url)('@azure/identity') as typeof Identity;
  if (tenantId && clientId && clientSecret) {
    return new identity.ClientSecretCredential(tenantId, clientId, clientSecret);
  }
  return new identity.DefaultAzureCredential();
}

/** A credential that needs no network: the fake ARM accepts any bearer token. */
export function staticTokenCredential(token = 'respawn-offline-token'): TokenCredential {
  return {
    getToken: () => Promise.resolve({ token, expiresOnTimestamp: Date.now() + 60 * 60 * 1000 }),
  };
}
