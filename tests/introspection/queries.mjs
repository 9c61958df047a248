// Print, as JSON, the introspection queries clients send: graphql-js's
// getIntrospectionQuery with every combination of its options (what Apollo's
// tools, GraphQL Code Generator, Postman and Insomnia send is one of them),
// and the query GraphiQL sends, which is getIntrospectionQuery with
// inputValueDeprecation and schemaDescription.
import { getIntrospectionQuery, version } from "graphql";

const options = [
  "descriptions",
  "specifiedByUrl",
  "directiveIsRepeatable",
  "schemaDescription",
  "inputValueDeprecation",
  "oneOf",
];
const queries = [];
for (let mask = 0; mask < 1 << options.length; mask++) {
  const chosen = Object.fromEntries(options.map((name, i) => [name, (mask & (1 << i)) !== 0]));
  queries.push({ name: JSON.stringify(chosen), query: getIntrospectionQuery(chosen) });
}
queries.push({ name: "default", query: getIntrospectionQuery() });
console.log(JSON.stringify({ version, queries }));
