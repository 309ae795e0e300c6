// urql against the service at argv[2]: its default set-up, and the two docs/frontend.md gives.
// Prints one JSON line with what each got.
import { Client, fetchExchange, gql } from '@urql/core';

const url = `${process.argv[2]}/graphql`;
const QUERY = gql`
  query Catalog {
    walletDefinitions {
      slug
    }
  }
`;
const MUTATION = gql`
  mutation Login {
    login(email: "nobody@example.com", password: "not a password") {
      token
    }
  }
`;

const setups = {
  // urql's default: queries go as GET when they fit in a URL, without a header Apollo's CSRF check
  // accepts.
  default: new Client({ url, exchanges: [fetchExchange] }),
  // Fix 1: every operation as POST with a JSON body.
  post: new Client({ url, exchanges: [fetchExchange], preferGetMethod: false }),
  // Fix 2: keep GET for queries, with the header that tells Apollo the request is not a simple one.
  preflightHeader: new Client({
    url,
    exchanges: [fetchExchange],
    fetchOptions: { headers: { 'apollo-require-preflight': 'true' } },
  }),
};

const results = {};
for (const [name, client] of Object.entries(setups)) {
  const query = await client.query(QUERY, {}).toPromise();
  const mutation = await client.mutation(MUTATION, {}).toPromise();
  results[name] = {
    querySlugs: query.data?.walletDefinitions?.map((d) => d.slug) ?? null,
    queryStatus: query.error?.response?.status ?? null,
    mutationCodes: mutation.error?.graphQLErrors.map((e) => e.extensions.code) ?? [],
  };
}
process.stdout.write(JSON.stringify(results) + '\n');
