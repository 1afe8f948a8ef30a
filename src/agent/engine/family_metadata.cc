#include "agent/engine/family_metadata.h"

#include "metrics/contributions.h"
#include "remote_write/history_backfill.h"
#include "remote_write/write_request.h"

namespace ccmon::agent {

std::string SerializedFamilyMetadata() {
  rw::WriteRequest request;
  for (const FamilyDesc& d : FamilyCatalogue()) request.metadata.push_back(FamilyMetadata(d));
  for (const FamilyDesc& d : AgentFamilyCatalogue()) request.metadata.push_back(FamilyMetadata(d));
  std::string proto;
  (void)rw::Serialize(request, &proto);  // no series: nothing to refuse
  return proto;
}

}  // namespace ccmon::agent
