#include "common/overlap.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace lth_fast {

namespace {

struct Span {
  uintptr_t begin, end;
  size_t list;
  size_t index;
};

}  // namespace

void check_no_overlap(const char* op, std::initializer_list<NamedList> lists) {
  const std::vector<NamedList> named(lists);
  std::vector<Span> spans;
  for (size_t l = 0; l < named.size(); ++l)
    for (size_t i = 0; i < named[l].tensors.size(); ++i) {
      const at::Tensor& t = named[l].tensors[i];
      const auto bytes = static_cast<uintptr_t>(t.numel()) * t.element_size();
      if (bytes == 0) continue;
      const auto begin = reinterpret_cast<uintptr_t>(t.const_data_ptr());
      spans.push_back({begin, begin + bytes, l, i});
    }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin
                              : (a.list != b.list ? a.list < b.list : a.index < b.index);
  });
  // Of all overlapping pairs, the one reported is the first by position, not by address, so
  // the message does not depend on where the allocator put the tensors.
  using Pos = std::pair<size_t, size_t>;  // (list, index)
  bool found = false;
  std::pair<Pos, Pos> worst;
  for (size_t a = 0; a < spans.size(); ++a)
    for (size_t b = a + 1; b < spans.size() && spans[b].begin < spans[a].end; ++b) {
      const Span& x = spans[a];
      const Span& y = spans[b];
      const bool wx = named[x.list].written, wy = named[y.list].written;
      if (!wx && !wy) continue;  // two read-only tensors may share memory
      const bool same = x.begin == y.begin && x.end == y.end && x.index == y.index &&
                        wx != wy &&
                        named[x.list].tensors[x.index].scalar_type() ==
                            named[y.list].tensors[y.index].scalar_type();
      if (same) continue;
      const Pos px{x.list, x.index}, py{y.list, y.index};
      const std::pair<Pos, Pos> pair = px < py ? std::make_pair(px, py) : std::make_pair(py, px);
      if (!found || pair < worst) worst = pair;
      found = true;
    }
  TORCH_CHECK_VALUE(!found, op, ": ", named[worst.first.first].name, "[", worst.first.second,
                    "] and ", named[worst.second.first].name, "[", worst.second.second,
                    "] overlap in memory");
}

}  // namespace lth_fast
