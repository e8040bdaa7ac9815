// Sequence and SequenceGroup construction; the rest of their life is in the scheduler
// (token counts, blocks) and the engine step (tokens, outputs).
#include "engine/sequence.h"

namespace lmserve::engine {

std::unique_ptr<Sequence> Sequence::fork(int new_index) const {
  auto copy = std::make_unique<Sequence>(nullptr);
  copy->index = new_index;
  copy->tokens = tokens;
  copy->num_computed = num_computed;
  copy->blocks = blocks.fork();
  copy->cumulative_logprob = cumulative_logprob;
  return copy;
}

SequenceGroup::SequenceGroup(Request req, BlockPool* block_pool)
    : request(std::move(req)), pool(block_pool) {
  auto first = std::make_unique<Sequence>(pool);
  first->tokens = request.prompt;
  seqs.push_back(std::move(first));
  shared_prefix = num_prompt();
  if (request.kind == RequestKind::Generate) {
    const SamplingParams& p = request.params;
    lockstep = p.use_beam_search;
    max_seqs = p.use_beam_search ? std::max(p.num_beams, 1) : std::max(p.n, 1);
  }
}

int SequenceGroup::num_outputs() const {
  if (request.kind != RequestKind::Generate) return 0;
  return std::max(request.params.n, 1);
}

}  // namespace lmserve::engine
