/** The page shown while the environment is incomplete (it names variables, never their values). */
export function SetupProblem({ problems }: { readonly problems: readonly string[] }) {
  return (
    <section>
      <h1>Mailbox connection not configured</h1>
      <p className="notice error">The server cannot connect mailboxes yet:</p>
      <ul>
        {problems.map((problem) => (
          <li key={problem}>{problem}</li>
        ))}
      </ul>
      <p>
        Set the variables in <code>examples/nextjs/.env.local</code> (see{' '}
        <code>examples/nextjs/README.md</code>) and restart the server.
      </p>
    </section>
  );
}
