// CI: every export of the public entries carries TSDoc with an @example (the project rule).
// Lists exported symbols of the public entries whose declaration has no TSDoc @example.
import ts from 'typescript';
import { entries } from './entries.mjs';

const files = entries.map((e) => e.source);
const program = ts.createProgram(files, {
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  target: ts.ScriptTarget.ES2022,
});
const checker = program.getTypeChecker();
const missing = [];
for (const f of files) {
  const sf = program.getSourceFile(f);
  const mod = checker.getSymbolAtLocation(sf);
  for (const exp of checker.getExportsOfModule(mod)) {
    const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    const decl = sym.declarations?.[0];
    if (!decl) continue;
    const tags = ts.getJSDocTags(decl).map((t) => t.tagName.text);
    const docs = ts.getJSDocCommentsAndTags(decl);
    const isType = ts.isInterfaceDeclaration(decl) || ts.isTypeAliasDeclaration(decl);
    if (!tags.includes('example'))
      missing.push(`${isType ? 'type ' : ''}${exp.name}${docs.length ? '' : ' (no doc at all)'}`);
  }
}
if (missing.length > 0) {
  console.error(`${missing.length} public exports have no TSDoc @example:\n${missing.join('\n')}`);
  process.exit(1);
}
console.log('TSDoc: every public export has an @example');
