// Replays fuzz inputs without libFuzzer: every file named on the command line (or found in
// a directory named there) is fed once to LLVMFuzzerTestOneInput. Used in every build, so
// the seed corpus in test/fuzz/corpus/ runs as an ordinary test.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static bool run_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> buf;
  uint8_t tmp[4096];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf.insert(buf.end(), tmp, tmp + n);
  fclose(f);
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return true;
}

int main(int argc, char** argv) {
  int files = 0;
  for (int a = 1; a < argc; a++) {
    struct stat st;
    if (stat(argv[a], &st) != 0) {
      fprintf(stderr, "replay: %s does not exist\n", argv[a]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (!run_file(argv[a])) return 1;
      files++;
      continue;
    }
    std::vector<std::string> names;
    if (DIR* d = opendir(argv[a])) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') names.push_back(std::string(argv[a]) + "/" + e->d_name);
      closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (auto& nm : names) {
      if (!run_file(nm)) return 1;
      files++;
    }
  }
  printf("replay: %d inputs ran without a finding\n", files);
  return files > 0 ? 0 : 1;
}
