/**
 * Deterministic lexical embeddings: hashed character trigrams (the "hashing
 * trick"), signed, L2-normalised. Texts that share most of their trigrams
 * are close in cosine distance, so the semantic cache can be tested and
 * benchmarked offline with the same FT.SEARCH KNN path as real embeddings.
 * It captures spelling, not meaning: "car" and "automobile" are far apart.
 * Accents, case and punctuation are folded away first, as real embedding
 * models are nearly blind to them: "Qué es?" and "que es" are one point.
 */

const N = 3;

/** FNV-1a over n char codes starting at `start`, mixed so the low bits are usable as an index. */
function hashGram(text: string, start: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < start + N; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash >>> 0;
}

/** Accents, case and punctuation folded, whitespace collapsed, padded so that word boundaries form trigrams of their own. */
function normalise(text: string): string {
  const folded = text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
  return ` ${folded} `;
}

export function lexicalEmbedding(text: string, dim: number): Float32Array {
  const vector = new Float32Array(dim);
  const normalised = normalise(text);
  for (let i = 0; i + N <= normalised.length; i++) {
    const hash = hashGram(normalised, i);
    // The top bit gives a sign, so unrelated grams that collide cancel out on average instead of adding up.
    const index = hash % dim;
    vector[index] = (vector[index] as number) + (hash & 0x80000000 ? -1 : 1);
  }
  let norm = 0;
  for (let i = 0; i < dim; i++) norm += (vector[i] as number) ** 2;
  norm = Math.sqrt(norm);
  if (norm === 0) {
    // An empty or one-character text has no trigram: a fixed unit vector keeps it a valid point.
    vector[0] = 1;
    return vector;
  }
  for (let i = 0; i < dim; i++) vector[i] = (vector[i] as number) / norm;
  return vector;
}

export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
  return dot;
}
