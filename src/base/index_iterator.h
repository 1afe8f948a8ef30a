// IndexIterator: a forward iterator over a view that builds its elements on access
// (`Value View::operator[](size_t) const`), for range-for over such views.
#pragma once

#include <cstddef>

namespace ccmon {

template <class View>
struct IndexIterator {
  const View* view;  // borrowed
  size_t i;
  auto operator*() const { return (*view)[i]; }
  IndexIterator& operator++() {
    ++i;
    return *this;
  }
  bool operator!=(const IndexIterator& o) const { return i != o.i; }
};

}  // namespace ccmon
