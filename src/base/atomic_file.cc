#include "base/atomic_file.h"

namespace ccmon {

AtomicFileWriter::AtomicFileWriter(Env* env, std::string path, std::string temp_path,
                                   std::unique_ptr<WritableFile> file)
    : env_(env), path_(std::move(path)), temp_path_(std::move(temp_path)), file_(std::move(file)) {}

Status AtomicFileWriter::Open(Env* env, const std::string& path, unsigned mode,
                              std::unique_ptr<AtomicFileWriter>* out) {
  if (path.empty()) return Status::InvalidArgument("empty output path");
  // Only a regular file (or nothing) is replaced: renaming over a device, a FIFO or a directory
  // would destroy it (as root, `-o /dev/null` would turn /dev/null into a regular file).
  FileInfo existing;
  Status s = env->Stat(path, &existing);
  if (s.ok() && existing.type != FileType::kRegular) {
    return Status::InvalidArgument(path +
                                   " is not a regular file (a device, FIFO or directory): "
                                   "refusing to replace it");
  }
  s = env->CreateDirs(DirName(path));
  if (!s.ok()) return Status::IoError("cannot write " + path + ": " + s.message());
  std::string temp = path + ".tmp";
  // A PATH.tmp left by a killed run is replaced; so is anything else found there, a symlink
  // included, which is removed itself rather than followed: the temporary file is then created
  // exclusively, so a link planted there (in /tmp, by another user) cannot redirect the write to
  // its target, even if it reappears between the two calls (that fails instead).
  s = env->RemoveFile(temp);
  if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  std::unique_ptr<WritableFile> file;
  s = env->NewExclusiveFile(temp, &file, mode);
  if (!s.ok()) return s;
  out->reset(new AtomicFileWriter(env, path, std::move(temp), std::move(file)));
  return Status::Ok();
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!done_) Abandon();
}

void AtomicFileWriter::Abandon() {
  done_ = true;
  if (file_) {
    file_->Close();  // the error does not matter: the file is removed
    file_.reset();
  }
  env_->RemoveFile(temp_path_);
}

Status AtomicFileWriter::Append(std::string_view data) {
  if (done_) return Status::IoError(path_ + ": write after commit");
  if (!status_.ok()) return status_;
  status_ = file_->Append(data);
  return status_;
}

Status AtomicFileWriter::Commit(CommitSync sync) {
  if (done_) return Status::IoError(path_ + ": committed twice");
  Status s = status_;
  if (s.ok() && sync == CommitSync::kDurable) s = file_->Sync();
  if (s.ok()) s = file_->Close();
  if (s.ok()) s = env_->RenameFile(temp_path_, path_);
  if (!s.ok()) {
    Abandon();
    return s;
  }
  done_ = true;
  file_.reset();
  if (sync == CommitSync::kNone) return Status::Ok();
  // The rename is done; a failed directory sync means it may not survive a crash.
  s = env_->SyncDir(DirName(path_));
  if (!s.ok())
    return Status::IoError(path_ + ": replaced, but may not survive a crash: " + s.message());
  return s;
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view content,
                           unsigned mode, CommitSync sync) {
  std::unique_ptr<AtomicFileWriter> w;
  Status s = AtomicFileWriter::Open(env, path, mode, &w);
  if (!s.ok()) return s;
  s = w->Append(content);
  if (!s.ok()) return s;
  return w->Commit(sync);
}

}  // namespace ccmon
