// Runs a frontend's session with @apollo/client against the service at argv[2], with the type
// policies of docs/frontend.md unless argv[3] is "bare", and prints what it found as one JSON
// line: the checks of the cached lists after each step, and every warning Apollo Client printed
// (it prints them only under `node --conditions=development`).
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { typePolicies, evictDeleted } from './type-policies.mjs';

const url = process.argv[2];
const bare = process.argv[3] === 'bare';
const warnings = [];
for (const level of ['warn', 'error'])
  console[level] = (...args) => warnings.push(args.map(String).join(' '));

const CREDENTIALS = gql`
  query Credentials {
    credentials {
      id
      name
      isConnected
    }
  }
`;
const WALLETS = gql`
  query Wallets {
    userWallets {
      id
      name
      status
      userLimits {
        maxTotalRisk
        tradingMode
      }
      aiManagedState {
        currentLeverage
        riskScore
      }
      credential {
        id
        name
      }
    }
  }
`;
const BINANCE = gql`
  query Binance {
    walletDefinition(slug: "binance") {
      id
    }
  }
`;

let token = null;
const client = new ApolloClient({
  link: new HttpLink({
    uri: `${url}/graphql`,
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...init.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      }),
  }),
  cache: new InMemoryCache(bare ? {} : { typePolicies }),
});
const checks = [];
// null when the cache can no longer answer the query in full (data was lost).
const cached = (query) => client.cache.readQuery({ query });
const wallets = () => cached(WALLETS)?.userWallets ?? null;
const credentials = () => cached(CREDENTIALS)?.credentials ?? null;
const check = (step, ok, detail) => checks.push({ step, ok: Boolean(ok), detail });

const email = `frontend-${Date.now()}@example.com`;
const registered = await client.mutate({
  mutation: gql`
    mutation ($e: String!) {
      register(input: { email: $e, password: "a long frontend password" }) {
        token
        user {
          id
        }
      }
    }
  `,
  variables: { e: email },
});
token = registered.data.register.token;
check('sign in', token, email);

await client.query({ query: CREDENTIALS });
await client.query({ query: WALLETS });
const walletId = (await client.query({ query: BINANCE })).data.walletDefinition.id;

const credential = await client.mutate({
  mutation: gql`
    mutation ($w: ObjectID!) {
      createCredential(
        input: {
          walletId: $w
          name: "Main"
          values: [
            { key: "api_key", value: "key-0123456789abcdef" }
            { key: "api_secret", value: "secret-0123456789abcdef" }
          ]
        }
      ) {
        id
        name
        isConnected
      }
    }
  `,
  variables: { w: walletId },
  refetchQueries: [{ query: CREDENTIALS }],
  awaitRefetchQueries: true,
});
const credentialId = credential.data.createCredential.id;
check(
  'create a credential',
  credentials()
    ?.map((c) => c.id)
    .join() === credentialId,
  credentials(),
);

const wallet = await client.mutate({
  mutation: gql`
    mutation ($c: ObjectID!) {
      createUserWallet(
        input: {
          credentialId: $c
          name: "Swing"
          userLimits: { maxTotalRisk: 1000, tradingMode: MODERATE }
        }
      ) {
        id
        name
        status
      }
    }
  `,
  variables: { c: credentialId },
  refetchQueries: [{ query: WALLETS }],
  awaitRefetchQueries: true,
});
const id = wallet.data.createUserWallet.id;
const listed = wallets();
check(
  'create a wallet and list',
  listed?.length === 1 &&
    listed[0].id === id &&
    listed[0].status === 'ACTIVE' &&
    listed[0].userLimits.tradingMode === 'MODERATE',
  listed,
);

// The answer selects other fields of the limits and the AI state than the list did.
await client.mutate({
  mutation: gql`
    mutation ($id: ObjectID!) {
      updateUserWallet(
        id: $id
        input: {
          userLimits: { maxTotalRisk: 400, allowedSymbols: ["BTC/USDT"], tradingMode: MODERATE }
        }
      ) {
        id
        userLimits {
          maxTotalRisk
          allowedSymbols
        }
        aiManagedState {
          currentMaxPositionSize
        }
      }
    }
  `,
  variables: { id },
});
const updated = wallets()?.[0];
check(
  'update limits',
  updated?.userLimits.maxTotalRisk === 400 &&
    updated.userLimits.tradingMode === 'MODERATE' &&
    updated.aiManagedState.currentLeverage !== undefined,
  updated,
);

await client.mutate({
  mutation: gql`
    mutation ($id: ObjectID!) {
      pauseUserWallet(id: $id) {
        id
        status
      }
    }
  `,
  variables: { id },
});
check('pause', wallets()?.[0]?.status === 'USER_PAUSED', wallets());

await client.mutate({
  mutation: gql`
    mutation ($id: ObjectID!) {
      deleteUserWallet(id: $id) {
        id
        deleted
      }
    }
  `,
  variables: { id },
  update: bare ? undefined : (cache) => evictDeleted(cache, 'UserWallet', id),
});
check('delete the wallet', wallets()?.length === 0, wallets());

await client.mutate({
  mutation: gql`
    mutation ($id: ObjectID!) {
      deleteCredential(id: $id) {
        id
        deleted
      }
    }
  `,
  variables: { id: credentialId },
  update: bare ? undefined : (cache) => evictDeleted(cache, 'Credential', credentialId),
});
check('delete the credential', credentials()?.length === 0, credentials());

process.stdout.write(JSON.stringify({ checks, warnings }) + '\n');
