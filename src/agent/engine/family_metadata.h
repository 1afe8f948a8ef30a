// The metadata (TYPE, HELP, UNIT) of every family the agent can send, for
// OutboxShardSource::SendMetadata (remote_write/outbox/outbox_source.h).
#pragma once

#include <string>

namespace ccmon::agent {

// The metadata of every family the agent can send (metrics/contributions.h: FamilyCatalogue and
// AgentFamilyCatalogue) as a serialized remote-write WriteRequest with no series.
std::string SerializedFamilyMetadata();

}  // namespace ccmon::agent
